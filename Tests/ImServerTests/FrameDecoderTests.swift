import Foundation
import ImCore
import ImServer
import NIOCore
import Testing

@testable import ImClient

/// The compact encoding end to end without a socket: what the node encodes
/// (``ServerFrame/compactBytes``) is what the Swift client decodes, and no input makes the
/// client's reader trap.
@Suite("Compact frames: node encoder, client decoder")
struct FrameDecoderTests {
    /// The MessagePack payload of a compact WebSocket frame (after its 2- or 4-byte header).
    private static func payload(_ frame: ServerFrame) throws -> ByteBuffer {
        let bytes = try #require(frame.compactBytes)
        let length = bytes.getInteger(at: bytes.readerIndex + 1, as: UInt8.self) ?? 0
        let header = length < 126 ? 2 : 4
        return try #require(bytes.getSlice(at: bytes.readerIndex + header, length: bytes.readableBytes - header))
    }

    @Test("every frame type round-trips: message (direct, channel, broadcast), receipt, ready, pong")
    func roundTrip() throws {
        let body = String(repeating: "é", count: 40)  // a body of 80+ bytes: str 8, a 4-byte WebSocket header
        let message = Message(
            id: "eae39fec000000000001", sender: "alice", timestamp: 1_796_034_657_379,
            data: ByteBuffer(string: "\"\(body)\""))
        guard
            case .message(let direct)? = FrameDecoder.messagePack(
                try Self.payload(.message(message, wantsReceipt: true, compact: true)))
        else {
            Issue.record("not a message")
            return
        }
        #expect(direct.id == message.id && direct.from == "alice" && direct.kind == .direct && direct.wantsReceipt)
        #expect(direct.timestamp == 1_796_034_657_379)
        #expect(direct.json == "\"\(body)\"")
        var inRoom = message
        inRoom.channel = "room"
        guard case .message(let channel)? = FrameDecoder.messagePack(try Self.payload(.message(inRoom, compact: true)))
        else {
            Issue.record("not a message")
            return
        }
        #expect(channel.kind == .channel && channel.channel == "room" && !channel.wantsReceipt)
        guard
            case .message(let everyone)? = FrameDecoder.messagePack(
                try Self.payload(.message(message, isBroadcast: true, compact: true)))
        else {
            Issue.record("not a message")
            return
        }
        #expect(everyone.kind == .broadcast)
        let receipt = Receipt(messageID: "m1", sender: "alice", receiver: "bob", status: .acked)
        guard case .receipt(let decoded)? = FrameDecoder.messagePack(try Self.payload(.receipt(receipt, compact: true)))
        else {
            Issue.record("not a receipt")
            return
        }
        #expect(decoded == IncomingReceipt(id: "m1", to: "bob", status: .acked))
        guard
            case .ready(let client, let node)? = FrameDecoder.messagePack(
                try Self.payload(.ready(client: "alice", node: "node-1", compact: true)))
        else {
            Issue.record("not ready")
            return
        }
        #expect(client == "alice" && node == "node-1")
        guard case .other? = FrameDecoder.messagePack(try Self.payload(.pong)) else {
            Issue.record("pong is not read as another frame")
            return
        }
        #expect(ServerFrame.message(message).compactBytes == nil, "no compact form unless asked for")
    }

    @Test("every truncation of a frame, and random bytes, decode to nil or a frame, never a trap")
    func hostileInput() throws {
        let message = Message(id: "id", sender: "alice", channel: "room", timestamp: 1, data: ByteBuffer(string: "{}"))
        let whole = try Self.payload(.message(message, wantsReceipt: true, compact: true))
        for length in 0..<whole.readableBytes {
            let cut = try #require(whole.getSlice(at: whole.readerIndex, length: length))
            #expect(FrameDecoder.messagePack(cut) == nil, "a frame cut to \(length) bytes")
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<64, using: &generator)).map { _ in UInt8.random(in: 0...255) }
            _ = FrameDecoder.messagePack(ByteBuffer(bytes: [0x97] + bytes))
            _ = FrameDecoder.messagePack(ByteBuffer(bytes: bytes))
        }
    }
}
