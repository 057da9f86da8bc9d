import NIOCore
import NIOWebSocket
import Testing

@testable import ImServer

@Suite("Client frames checked against RFC 6455")
struct ClientFrameAssemblerTests {
    private static let mask = WebSocketMaskingKey([1, 2, 3, 4])!

    /// A frame as the decoder hands it on: its payload masked as on the wire.
    private static func frame(
        _ opcode: WebSocketOpcode, _ bytes: [UInt8], fin: Bool = true,
        masked: Bool = true, rsv1: Bool = false
    ) -> WebSocketFrame {
        var data = ByteBuffer(bytes: bytes)
        if masked { data.webSocketMask(mask) }
        return WebSocketFrame(fin: fin, rsv1: rsv1, opcode: opcode, maskKey: masked ? mask : nil, data: data)
    }

    private static func text(_ string: String, fin: Bool = true) -> WebSocketFrame {
        frame(.text, Array(string.utf8), fin: fin)
    }

    private static func close(_ code: UInt16?, reason: [UInt8] = []) -> WebSocketFrame {
        var bytes: [UInt8] = []
        if let code { bytes = [UInt8(code >> 8), UInt8(code & 0xFF)] }
        return frame(.connectionClose, bytes + reason)
    }

    private func violation(_ frames: [WebSocketFrame], maximum: Int = 1024) -> ClientFrameAssembler.Violation? {
        var assembler = ClientFrameAssembler(maximumMessageSize: maximum, maximumFragments: 4)
        do {
            for frame in frames { _ = try assembler.accept(frame) }
            return nil
        } catch {
            return error
        }
    }

    @Test("a text frame in one piece or in fragments with a ping between comes out whole and unmasked")
    func assembles() throws {
        var assembler = ClientFrameAssembler(maximumMessageSize: 1024)
        #expect(try assembler.accept(Self.text(#"{"type":"ping"}"#)) == .text(ByteBuffer(string: #"{"type":"ping"}"#)))
        #expect(try assembler.accept(Self.text(#"{"type":"#, fin: false)) == .partial)
        #expect(try assembler.accept(Self.frame(.ping, [7])) == .ping(ByteBuffer(bytes: [7])))
        #expect(try assembler.accept(Self.frame(.continuation, Array(#""ack","#.utf8), fin: false)) == .partial)
        #expect(
            try assembler.accept(Self.frame(.continuation, Array(#""id":"x"}"#.utf8)))
                == .text(ByteBuffer(string: #"{"type":"ack","id":"x"}"#)))
        // The next message starts afresh.
        #expect(try assembler.accept(Self.text("é")) == .text(ByteBuffer(string: "é")))
        // A multi-byte character split between fragments is valid once joined.
        #expect(try assembler.accept(Self.frame(.text, [0xC3], fin: false)) == .partial)
        #expect(try assembler.accept(Self.frame(.continuation, [0xA9])) == .text(ByteBuffer(bytes: [0xC3, 0xA9])))
    }

    @Test(
        "frames the RFC forbids are protocol errors (1002)",
        arguments: [
            ("unmasked", [frame(.text, Array("hi".utf8), masked: false)]),
            ("reserved bit", [frame(.text, Array("hi".utf8), rsv1: true)]),
            ("reserved data opcode", [frame(WebSocketOpcode(encodedWebSocketOpcode: 3)!, [])]),
            ("reserved control opcode", [frame(WebSocketOpcode(encodedWebSocketOpcode: 0xB)!, [])]),
            ("continuation with nothing to continue", [frame(.continuation, Array("hi".utf8))]),
            ("new message inside a fragmented one", [text("a", fin: false), text("b")]),
            ("close with one byte", [frame(.connectionClose, [0x03])]),
            ("close code 999", [close(999)]),
            ("close code 1004", [close(1004)]),
            ("close code 1005", [close(1005)]),
            ("close code 1006", [close(1006)]),
            ("close code 1015", [close(1015)]),
            ("close code 2000", [close(2000)]),
            ("close code 5000", [close(5000)]),
        ] as [(String, [WebSocketFrame])])
    func protocolErrors(_ name: String, _ frames: [WebSocketFrame]) {
        #expect(violation(frames)?.code == .protocolError, "\(name)")
    }

    @Test(
        "text and close reasons that are not UTF-8 are invalid payload data (1007)",
        arguments: [
            [frame(.text, [0xC3, 0x28])],
            [frame(.text, [0xED, 0xA0, 0x80])],  // a UTF-16 surrogate
            [frame(.text, [0xF4, 0x90, 0x80, 0x80])],  // beyond U+10FFFF
            [frame(.text, [0xCE, 0xBA], fin: false), frame(.continuation, [0xE1, 0xBD], fin: true)],  // cut short
            [close(1000, reason: [0xFF])],
        ])
    func invalidUTF8(_ frames: [WebSocketFrame]) {
        #expect(violation(frames)?.code == .invalidPayload)
    }

    @Test("a message over the size limit or in too many fragments closes with 1009")
    func limits() {
        #expect(
            violation([
                Self.text(String(repeating: "a", count: 600), fin: false),
                Self.frame(.continuation, Array(repeating: 0x61, count: 600)),
            ])?.code == .messageTooBig)
        let fragments =
            [Self.text("a", fin: false)] + Array(repeating: Self.frame(.continuation, [0x61], fin: false), count: 4)
        #expect(violation(fragments)?.code == .messageTooBig)
        #expect(violation(Array(fragments.prefix(4))) == nil)
    }

    @Test("valid close frames give their code; binary, pong and the registered codes pass")
    func validFrames() throws {
        var assembler = ClientFrameAssembler(maximumMessageSize: 1024)
        #expect(try assembler.accept(Self.close(nil)) == .close(code: nil))
        for code: UInt16 in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
        ] {
            #expect(try assembler.accept(Self.close(code, reason: Array("bye ✓".utf8))) == .close(code: code))
        }
        #expect(try assembler.accept(Self.frame(.binary, [0, 1])) == .binary)
        #expect(try assembler.accept(Self.frame(.pong, [])) == .pong)
    }
}
