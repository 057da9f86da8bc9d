import NIOCore
import NIOEmbedded
import Testing

@testable import imbench

/// The nats-server peer: the NATS protocol a member reads inside WebSocket frames, and the
/// `--peer` URL.
@Suite struct NATSPeerTests {
    /// A member subscribed to `room` on an embedded channel (the fixture the Centrifuge tests
    /// use), upgraded and greeted by the server's `INFO`.
    private static func upgradedMember() throws -> CentrifugePeerTests.Member {
        let member = try CentrifugePeerTests.Member(
            meeting: PeerMeeting(
                endpoint: try Endpoint(parsing: "ws://h/"), greeting: MemberHandler.natsGreeting(subject: "room")),
            tracker: SeqTracker(stride: 1, offset: 0))
        try member.feed(CentrifugePeerTests.upgraded + binary("INFO {\"x\":1}\r\n"))
        return member
    }

    private static func binary(_ text: String) -> [UInt8] { [0x82, UInt8(text.utf8.count)] + Array(text.utf8) }

    @Test func membersSubscribeAndReadMessagesSplitAcrossFrames() throws {
        let member = try Self.upgradedMember()
        let (channel, recorder) = (member.channel, member.recorder)
        // The greeting went out once upgraded: CONNECT, SUB room 1, PING, in one masked frame.
        let greeting = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(greeting.getInteger(at: 0, as: UInt8.self) == 0x82)
        #expect(member.state() == nil, "not ready yet")
        let message = #"{"seq":0,"t":1}"#
        let stream =
            Self.binary("PONG\r\nMSG room 1 \(message.utf8.count)\r\n\(message.prefix(5))")
            + Self.binary("\(message.dropFirst(5))\r\nPING\r\n")
        for byte in stream { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
        #expect(member.state() == true, "PONG answers the greeting's PING: subscribed")
        #expect(recorder.delivered.load(ordering: .relaxed) == 1)
        #expect(recorder.members.first?.tracker.received == 1)
        let pong = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(pong.getInteger(at: 0, as: UInt8.self) == 0x82, "the server's PING answered")
    }

    @Test func bytesWithoutACompleteLineAreBounded() throws {
        let channel = try Self.upgradedMember().channel
        _ = try channel.readOutbound(as: ByteBuffer.self)  // the greeting
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: MemberHandler.maxFrameSize)
        for _ in 0..<2 {
            try channel.writeInbound(ByteBuffer(bytes: CentrifugePeerTests.frame(chunk, opcode: WireFrame.binary)))
        }
        #expect(channel.isActive, "a line and a message's body are held")
        try channel.writeInbound(ByteBuffer(bytes: Self.binary("x")))
        #expect(!channel.isActive, "more is a peer that never ends its line")
    }

    @Test func peerURL() throws {
        #expect(try NATSPeer(parsing: "nats://127.0.0.1:4333") == NATSPeer(host: "127.0.0.1", port: 4333))
        #expect(try NATSPeer(parsing: "nats://localhost").port == 4222)
        #expect(throws: BenchError.self) { try NATSPeer(parsing: "ws://127.0.0.1:4222") }
    }
}
