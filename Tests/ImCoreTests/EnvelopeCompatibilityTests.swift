import ImCore
import NIOCore
import Testing

/// Bytes of format version 1 as written by the build at commit 61c643e: they must keep decoding
/// to the same envelopes, and the encoder must keep writing them, so nodes and helpers of two
/// builds can share a bus during a rolling upgrade.
@Suite("Envelope format compatibility")
struct EnvelopeCompatibilityTests {
    static let written: [(name: String, hex: String, envelope: Envelope)] = [
        (
            "delivery",
            "0101026d3105616c6963650000000193433ea8000a7b2274223a226869227d0203626f62056361726f6c0103626f6201066e6f64652d61",
            .delivery(
                Delivery(
                    message: Message(
                        id: "m1", sender: "alice", timestamp: 1_732_000_000_000,
                        data: ByteBuffer(string: #"{"t":"hi"}"#)),
                    receivers: ["bob", "carol"], receiptFor: ["bob"], senderNodes: ["node-a"]))
        ),
        (
            "channel", "0102026d3203626f620104726f6f6d00000193433ea801055b312c325d",
            .channel(
                Message(
                    id: "m2", sender: "bob", channel: "room", timestamp: 1_732_000_000_001,
                    data: ByteBuffer(string: "[1,2]")))
        ),
        (
            "broadcast", "0103026d33037379730000000193433ea8020522616c6c22",
            .broadcast(
                Message(id: "m3", sender: "sys", timestamp: 1_732_000_000_002, data: ByteBuffer(string: #""all""#)))
        ),
        (
            "receipt", "0104026d3105616c69636503626f6203",
            .receipt(Receipt(messageID: "m1", sender: "alice", receiver: "bob", status: .acked))
        ),
        (
            "join", "010505616c6963650204726f6f6d056c6f626279010b696d2e696e626f782e683101027231",
            .command(
                .join("alice", channels: ["room", "lobby"]),
                reply: ReplyAddress(subject: "im.inbox.h1", requestID: "r1"))
        ),
        ("leave", "010605616c6963650104726f6f6d0000", .command(.leave("alice", channels: ["room"]), reply: nil)),
        (
            "forceOffline", "010703626f62010b696d2e696e626f782e683101027232",
            .command(.forceOffline("bob"), reply: ReplyAddress(subject: "im.inbox.h1", requestID: "r2"))
        ),
        (
            "event", "010802056361726f6c066e6f64652d62010377656200000193433ea803",
            .event(
                PresenceEvent(
                    kind: .offline, client: "carol", node: "node-b", meta: "web", timestamp: 1_732_000_000_003))
        ),
        ("reply", "0109027231", .reply(requestID: "r1")),
        (
            "batch", "010a02000000100104026d3105616c69636503626f6203000000050109027231",
            .batch([
                .receipt(Receipt(messageID: "m1", sender: "alice", receiver: "bob", status: .acked)),
                .reply(requestID: "r1"),
            ])
        ),
    ]

    @Test("envelopes written by the previous build decode to the same values, and are written the same way")
    func previousBuildsBytes() throws {
        for (name, hex, envelope) in Self.written {
            let bytes = try #require(Self.bytes(hex), "\(name): bad hex")
            #expect(try Envelope(decoding: ByteBuffer(bytes: bytes)) == envelope, "\(name) no longer decodes as before")
            #expect(Array(envelope.encoded().readableBytesView) == bytes, "\(name) is no longer written as before")
        }
    }

    @Test("an unknown version or kind is refused with a typed error, never read as something else")
    func unknownVersionAndKind() throws {
        let reply = try #require(Self.bytes("0109027231"))
        var newer = reply
        newer[0] = Envelope.formatVersion + 1
        #expect(throws: EnvelopeDecodingError.unsupportedVersion(Envelope.formatVersion + 1)) {
            try Envelope(decoding: ByteBuffer(bytes: newer))
        }
        var unknownKind = reply
        unknownKind[1] = 99
        #expect(throws: EnvelopeDecodingError.unknownKind(99)) {
            try Envelope(decoding: ByteBuffer(bytes: unknownKind))
        }
    }

    /// The bytes `hex` spells, or `nil` if it is not hex.
    static func bytes(_ hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count.isMultiple(of: 2) else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else {
                return nil
            }
            bytes.append(byte)
        }
        return bytes
    }
}
