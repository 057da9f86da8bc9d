import Foundation
import ImCore
import NIOCore
import Testing

@testable import ImServer

/// A WebSocket frame header decoded independently of the code under test (RFC 6455 §5.2).
private struct DecodedFrame {
    var fin: Bool
    var opcode: UInt8
    var masked: Bool
    /// 2, 4 or 10.
    var headerLength: Int
    var payload: [UInt8]

    var text: String { String(decoding: payload, as: UTF8.self) }
}

private enum FrameDecodeError: Error { case short(String) }

private func decodeFrame(_ frame: ServerFrame) throws -> DecodedFrame {
    let bytes = Array(frame.bytes.readableBytesView)
    guard bytes.count >= 2 else { throw FrameDecodeError.short("header") }
    let fin = bytes[0] & 0x80 != 0
    let opcode = bytes[0] & 0x0F
    #expect(bytes[0] & 0x70 == 0, "reserved bits must be clear")
    let masked = bytes[1] & 0x80 != 0
    var length = UInt64(bytes[1] & 0x7F)
    var header = 2
    if length == 126 {
        guard bytes.count >= 4 else { throw FrameDecodeError.short("16-bit length") }
        length = UInt64(bytes[2]) << 8 | UInt64(bytes[3])
        header = 4
    } else if length == 127 {
        guard bytes.count >= 10 else { throw FrameDecodeError.short("64-bit length") }
        length = bytes[2..<10].reduce(0) { $0 << 8 | UInt64($1) }
        #expect(length >> 63 == 0, "the most significant bit of a 64-bit length must be 0")
        header = 10
    }
    if masked { header += 4 }
    #expect(UInt64(bytes.count - header) == length, "frame holds exactly the declared payload")
    return DecodedFrame(
        fin: fin, opcode: opcode, masked: masked, headerLength: header,
        payload: Array(bytes[header...]))
}

/// Parses a payload with Foundation's strict parser, as an object.
private func jsonObject(_ frame: DecodedFrame) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(frame.payload))
    return try #require(object as? [String: Any], "payload is not a JSON object: \(frame.text)")
}

/// Parses a payload with ImCore's JSONValue (keeps numbers exact).
private func jsonValue(_ frame: DecodedFrame) throws -> JSONValue {
    try JSONDecoder().decode(JSONValue.self, from: Data(frame.payload))
}

private func message(
    id: String = "m-1", from: ClientID = "alice", channel: String? = nil,
    timestamp: Int64 = 1_700_000_000_123, data: String = #"{"text":"hi"}"#
) -> Message {
    Message(id: id, sender: from, channel: channel, timestamp: timestamp, data: ByteBuffer(string: data))
}

@Suite("Server frames")
struct ServerFrameTests {
    @Test("a message frame is one unmasked final text frame holding the message as JSON")
    func messageFrame() throws {
        let frame = try decodeFrame(.message(message(data: #"{"text":"hi","n":[1,2,{"x":null}]}"#)))
        #expect(frame.fin)
        #expect(frame.opcode == 0x1)
        #expect(!frame.masked)
        #expect(frame.headerLength == 2)

        let value = try jsonValue(frame)
        #expect(value["type"] == .string("message"))
        #expect(value["id"] == .string("m-1"))
        #expect(value["from"] == .string("alice"))
        #expect(value["chan"] == nil, "no channel key for a direct message")
        #expect(value["ts"] == .number(Decimal(1_700_000_000_123)))
        #expect(
            value["data"]
                == .object([
                    "text": .string("hi"),
                    "n": .array([.number(1), .number(2), .object(["x": .null])]),
                ]))
        #expect(value["receipt"] == nil)
        let keys = try Set(jsonObject(frame).keys)
        #expect(keys == ["type", "id", "from", "data", "ts"])
    }

    @Test("a channel message carries chan")
    func channelMessage() throws {
        let frame = try decodeFrame(.message(message(channel: "room-1")))
        let value = try jsonValue(frame)
        #expect(value["chan"] == .string("room-1"))
        #expect(try Set(jsonObject(frame).keys) == ["type", "id", "from", "chan", "data", "ts"])
    }

    @Test("receipt:true appears only when a receipt is wanted")
    func receiptFlag() throws {
        let wanted = try jsonValue(decodeFrame(.message(message(), wantsReceipt: true)))
        #expect(wanted["receipt"] == .bool(true))
        let unwanted = try jsonValue(decodeFrame(.message(message(), wantsReceipt: false)))
        #expect(unwanted["receipt"] == nil)
        let byDefault = try jsonValue(decodeFrame(.message(message())))
        #expect(byDefault["receipt"] == nil)
    }

    @Test("timestamps at the limits are written exactly", arguments: [Int64.min, -1, 0, 1, Int64.max])
    func timestamps(_ ts: Int64) throws {
        let value = try jsonValue(decodeFrame(.message(message(timestamp: ts))))
        #expect(value["ts"] == .number(Decimal(string: String(ts))!))
    }

    @Test(
        "every kind of JSON body is embedded as it is",
        arguments: [
            "null", "true", "0", "-1.5e3", #""text""#, "[]", "{}", #"[{"a":[{"b":"c"}]}]"#, #""\u0000 \" \\""#,
        ])
    func dataEmbedded(_ data: String) throws {
        let frame = try decodeFrame(.message(message(data: data)))
        let value = try jsonValue(frame)
        let expected = try JSONDecoder().decode(JSONValue.self, from: Data(data.utf8))
        #expect(value["data"] == expected)
    }

    @Test(
        "the header uses the shortest length form for each payload size",
        arguments: [
            (125, 2), (126, 4), (127, 4), (65535, 4), (65536, 10), (70000, 10),
        ])
    func lengthForms(_ size: Int, _ expectedHeader: Int) throws {
        // Measure the frame's own overhead with a one-byte body, then pad a JSON string body
        // so the payload is exactly `size` bytes.
        let probe = try decodeFrame(.message(message(data: "0")))
        let overhead = probe.payload.count - 1
        try #require(overhead > 20 && size >= overhead + 2)
        let body = "\"" + String(repeating: "a", count: size - overhead - 2) + "\""
        let frame = try decodeFrame(.message(message(data: body)))
        #expect(frame.payload.count == size)
        #expect(frame.headerLength == expectedHeader)
        #expect(frame.fin && frame.opcode == 1 && !frame.masked)
        let value = try jsonValue(frame)
        #expect(value["data"]?.string?.count == size - overhead - 2)
        #expect(value["id"] == .string("m-1"))
    }

    @Test("the raw header bytes of the three length forms")
    func rawHeaderBytes() throws {
        let probe = try decodeFrame(.message(message(data: "0")))
        let overhead = probe.payload.count - 1
        func frame(payloadSize: Int) -> [UInt8] {
            let body = "\"" + String(repeating: "b", count: payloadSize - overhead - 2) + "\""
            return Array(ServerFrame.message(message(data: body)).bytes.readableBytesView)
        }
        #expect(Array(frame(payloadSize: 125).prefix(2)) == [0x81, 125])
        #expect(Array(frame(payloadSize: 126).prefix(4)) == [0x81, 126, 0x00, 0x7E])
        #expect(Array(frame(payloadSize: 65535).prefix(4)) == [0x81, 126, 0xFF, 0xFF])
        #expect(Array(frame(payloadSize: 65536).prefix(10)) == [0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00])
    }

    @Test("a 1 MiB body is framed with the 64-bit length")
    func largeBody() throws {
        let body = "\"" + String(repeating: "z", count: 1 << 20) + "\""
        let frame = try decodeFrame(.message(message(data: body)))
        #expect(frame.headerLength == 10)
        #expect(try jsonValue(frame)["data"]?.string?.count == 1 << 20)
    }

    static let awkwardStrings = [
        "quote\"inside", "back\\slash", "\\\"", "new\nline", "cr\rlf", "tab\there", "nul\u{0}byte",
        "bell\u{7}", "unit\u{1F}sep", "del\u{7F}", "é 中文 🌍 👨‍👩‍👧", "\u{2028}\u{2029}", "</script>", "", "\"",
        "\\u0041",
    ]

    @Test("id, from and chan are escaped so any text survives", arguments: awkwardStrings)
    func escaping(_ text: String) throws {
        let frame = try decodeFrame(.message(message(id: text, from: ClientID(rawValue: text), channel: text)))
        #expect(!frame.payload.contains { $0 < 0x20 }, "raw control characters in \(frame.text)")
        let object = try jsonObject(frame)
        #expect(object["id"] as? String == text)
        #expect(object["from"] as? String == text)
        #expect(object["chan"] as? String == text)
        #expect(object["type"] as? String == "message")
    }

    @Test("every control character is escaped")
    func allControlCharacters() throws {
        let text = String(decoding: (0..<0x20).map { UInt8($0) }, as: UTF8.self) + "end"
        let frame = try decodeFrame(.message(message(id: text)))
        #expect(!frame.payload.contains { $0 < 0x20 })
        #expect(try jsonObject(frame)["id"] as? String == text)

        var buffer = ByteBuffer()
        buffer.writeJSONString(text)
        let decoded = try JSONDecoder().decode(String.self, from: Data(buffer.readableBytesView))
        #expect(decoded == text)
    }

    @Test(
        "a JSON string written between a prefix and a suffix is the three, in order, escaped or not",
        arguments: ["", "plain-0123456789abcdef", "quote\" back\\slash\ttab", "é€"])
    func stringBetween(_ text: String) throws {
        var buffer = ByteBuffer()
        buffer.writeJSONString(text, after: #"{"id":"#, before: "}")
        buffer.writeJSONString(text, after: "[", before: ",1]")
        let bytes = Array(buffer.readableBytesView)
        var plain = ByteBuffer()
        plain.writeJSONString(text)
        let quoted = String(buffer: plain)
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"id":"# + quoted + "}" + "[" + quoted + ",1]")
        let object = try JSONDecoder().decode(
            [String: String].self, from: Data(bytes.prefix(bytes.count - quoted.utf8.count - 4)))
        #expect(object == ["id": text])
    }

    @Test("receipt frames name the message, the receiver and the status", arguments: Receipt.Status.allCases)
    func receiptFrame(_ status: Receipt.Status) throws {
        let receipt = Receipt(messageID: "m-\"9\"", sender: "alice", receiver: "bob\n", status: status)
        let frame = try decodeFrame(.receipt(receipt))
        #expect(frame.fin && frame.opcode == 1 && !frame.masked)
        let object = try jsonObject(frame)
        #expect(object["type"] as? String == "receipt")
        #expect(object["id"] as? String == "m-\"9\"")
        #expect(object["to"] as? String == "bob\n")
        #expect(object["status"] as? String == status.name)
        #expect(Set(object.keys) == ["type", "id", "to", "status"], "the sender is not repeated to the sender")
    }

    @Test("receipt status names are distinct and lower-case")
    func statusNames() {
        let names = Receipt.Status.allCases.map(\.name)
        #expect(Set(names) == ["delivered", "offline", "acked"])
    }

    @Test("the ready frame names the client and the node")
    func readyFrame() throws {
        for (client, node) in [("alice", "node-1"), ("a\"b\\c", "n\u{1}"), ("用户", "")] {
            let frame = try decodeFrame(.ready(client: ClientID(rawValue: client), node: NodeID(rawValue: node)))
            let object = try jsonObject(frame)
            #expect(object["type"] as? String == "ready")
            #expect(object["client"] as? String == client)
            #expect(object["node"] as? String == node)
            #expect(Set(object.keys) == ["type", "client", "node"])
        }
    }

    @Test("pong is a text frame holding {\"type\":\"pong\"}")
    func pong() throws {
        let frame = try decodeFrame(.pong)
        #expect(frame.fin && frame.opcode == 1 && !frame.masked && frame.headerLength == 2)
        let object = try jsonObject(frame)
        #expect(object["type"] as? String == "pong")
        #expect(object.count == 1)
    }

    @Test("a frame's bytes can be written many times: reading a copy does not consume it")
    func reusableBytes() throws {
        let frame = ServerFrame.message(message())
        var copy = frame.bytes
        _ = copy.readBytes(length: copy.readableBytes)
        #expect(copy.readableBytes == 0)
        let again = try decodeFrame(frame)
        #expect(try jsonValue(again)["id"] == .string("m-1"))
    }
}

@Suite("Client frames")
struct ClientFrameTests {
    private func parse(_ text: String) -> Result<ClientFrame, ClientFrameError> {
        do {
            return .success(try ClientFrame(parsing: ByteBuffer(string: text)))
        } catch {
            return .failure(error)
        }
    }

    @Test(
        "ping parses, with or without extra fields and whitespace",
        arguments: [
            #"{"type":"ping"}"#, #" { "type" : "ping" } "#, #"{"type":"ping","id":"ignored","x":[1]}"#,
        ])
    func ping(_ text: String) {
        #expect(parse(text) == .success(.ping))
    }

    @Test("ack parses with its id")
    func ack() {
        #expect(parse(#"{"type":"ack","id":"m-1"}"#) == .success(.ack(messageID: "m-1")))
        #expect(parse(#"{"id":"é\"x","type":"ack"}"#) == .success(.ack(messageID: "é\"x")))
        let longest = String(repeating: "a", count: 128)
        #expect(parse(#"{"type":"ack","id":"\#(longest)"}"#) == .success(.ack(messageID: longest)))
    }

    @Test(
        "ack without a usable id is refused as missing id",
        arguments: [
            #"{"type":"ack"}"#, #"{"type":"ack","id":""}"#, #"{"type":"ack","id":null}"#,
            #"{"type":"ack","id":"\#(String(repeating: "a", count: 129))"}"#,
        ])
    func ackWithoutID(_ text: String) {
        #expect(parse(text) == .failure(.missingField("id")))
    }

    @Test("ack with a non-string id is refused")
    func ackWithNumberID() {
        guard case .failure = parse(#"{"type":"ack","id":42}"#) else {
            Issue.record("a numeric id was accepted")
            return
        }
    }

    @Test("an unknown type is refused and named")
    func unknownType() {
        #expect(parse(#"{"type":"hello"}"#) == .failure(.unknownType("hello")))
        #expect(parse(#"{"type":""}"#) == .failure(.unknownType("")))
        #expect(parse(#"{"type":"PING"}"#) == .failure(.unknownType("PING")), "types are case-sensitive")

        // A huge type name is not echoed back in full.
        let huge = String(repeating: "x", count: 10_000)
        guard case .failure(.unknownType(let named)) = parse(#"{"type":"\#(huge)"}"#) else {
            Issue.record("expected unknownType")
            return
        }
        #expect(named.count < 100)
        #expect(huge.hasPrefix(named))
    }

    @Test(
        "text that is not a JSON object with a string type is malformed",
        arguments: [
            "", " ", "ping", "{", #"{"type":"ping""#, "[]", #"[{"type":"ping"}]"#, #""ping""#, "null", "42",
            "{}", #"{"type":1}"#, #"{"type":null}"#, #"{"type":["ping"]}"#, #"{"kind":"ping"}"#,
        ])
    func malformed(_ text: String) {
        #expect(parse(text) == .failure(.malformedJSON))
    }

    @Test("invalid UTF-8 is malformed")
    func invalidUTF8() {
        var buffer = ByteBuffer(string: #"{"type":"ack","id":""#)
        buffer.writeBytes([0xFF, 0xFE])
        buffer.writeString(#""}"#)
        #expect(throws: ClientFrameError.self) { try ClientFrame(parsing: buffer) }
    }

    @Test("only the readable bytes are parsed")
    func readableBytesOnly() throws {
        var buffer = ByteBuffer(string: #"garbage{"type":"ping"}"#)
        buffer.moveReaderIndex(forwardBy: 7)
        #expect(try ClientFrame(parsing: buffer) == .ping)
    }

    @Test("every client frame error describes itself")
    func describesItself() {
        let errors: [ClientFrameError] = [.malformedJSON, .unknownType("zzz"), .missingField("id")]
        #expect(Set(errors.map(\.description)).count == errors.count)
        #expect(ClientFrameError.unknownType("zzz").description.contains("zzz"))
        #expect(ClientFrameError.missingField("id").description.contains("id"))
    }
}
