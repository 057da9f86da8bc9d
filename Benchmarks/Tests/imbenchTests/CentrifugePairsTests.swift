import Foundation
import NIOCore
import Testing

@testable import imbench

/// `imbench p2p` against the Centrifuge peer: receiver `r<i>` connects as user `r<i>` and
/// subscribes to its personal channel `#r<i>`; the pacer publishes message `n` to
/// `#r<n % pairs>` through `POST /api`.
@Suite struct CentrifugePairsTests {
    private typealias Fixture = CentrifugePeerTests

    private static let websocket = "ws://127.0.0.1:7813/connection/websocket"

    /// How receiver `name` meets a Centrifuge peer in a p2p run.
    private static func receiver(_ name: String) throws -> PeerMeeting {
        try PeerDialect.centrifuge.meeting(name, at: try Endpoint(parsing: websocket), subscription: .personal)
    }

    // MARK: The receiver's handshake

    @Test func receiverConnectsAsItsUserAndSubscribesToItsChannel() throws {
        let member = try Fixture.Member(meeting: try Self.receiver("r3"), tracker: SeqTracker(stride: 4, offset: 3))
        #expect(member.request.hasPrefix("GET /connection/websocket?user=r3 HTTP/1.1\r\nHost: 127.0.0.1:7813\r\n"))
        try member.channel.writeInbound(ByteBuffer(bytes: Fixture.upgraded))
        let greeting = try Fixture.unmasked(try #require(try member.channel.readOutbound(as: ByteBuffer.self)))
        #expect(greeting.opcode == 0x81, "a final text frame: the JSON protocol")
        #expect(
            greeting.text == #"{"id":1,"params":{}}"# + "\n" + ##"{"id":2,"method":1,"params":{"channel":"#r3"}}"##
                + "\n")
        #expect(member.state() == nil, "not ready before the subscribe reply")
    }

    @Test func receiverIsReadyOnTheSubscribeReplyAndCountsItsOwnMessagesOnly() throws {
        let member = try Fixture.Member(meeting: try Self.receiver("r2"), tracker: SeqTracker(stride: 4, offset: 2))
        try member.feed(Fixture.upgraded + Fixture.frame(#"{"id":1,"result":{"client":"c1","version":""}}"# + "\n"))
        #expect(member.state() == nil)
        try member.feed(Fixture.frame(#"{"id":2,"result":{}}"# + "\n"))
        #expect(member.state() == true)
        try member.feed(
            Fixture.frame(
                Fixture.publication(2, channel: "#r2") + Fixture.publication(6, channel: "#r2")
                    + Fixture.publication(5, channel: "#r2") + Fixture.publication(6, channel: "#r2")))
        let tracker = try #require(member.recorder.members.first?.tracker)
        #expect(tracker.received == 2)
        #expect(tracker.misrouted == 1, "5 is r1's")
        #expect(tracker.duplicates == 1)
    }

    @Test func aPermissionDeniedSubscribeFailsTheReceiver() throws {
        let member = try Fixture.Member(meeting: try Self.receiver("r1"), tracker: SeqTracker(stride: 2, offset: 1))
        try member.feed(Fixture.upgraded + Fixture.frame(Fixture.refused))
        #expect(member.state() == false)
    }

    @Test func theUserParameterIsEncodedAndJoinsAQuery() throws {
        let plain = CentrifugePeer.endpoint(try Endpoint(parsing: Self.websocket), user: "r12")
        #expect(plain.target == "/connection/websocket?user=r12")
        #expect(plain.host == "127.0.0.1" && plain.port == 7813)
        let queried = CentrifugePeer.endpoint(try Endpoint(parsing: "ws://h:1/c?format=json"), user: "a b&c=#é")
        #expect(queried.target == "/c?format=json&user=a%20b%26c%3D%23%C3%A9")
        #expect(CentrifugePeer.endpoint(try Endpoint(parsing: "ws://h:1/c?"), user: "u").target == "/c?user=u")
        #expect(CentrifugePeer.personalChannel(of: "r7") == "#r7")
    }

    // MARK: Which scenarios a peer takes

    @Test func onlyACentrifugePeerHasPersonalChannels() throws {
        let centrifuge = try Peer(parsing: "centrifuge://127.0.0.1:7810")
        let nats = try Peer(parsing: "nats://127.0.0.1:4333")
        #expect(try centrifuge.subscription(for: .pairs(10)) == .personal)
        #expect(try centrifuge.subscription(for: .channel("bench")) == .channel("bench"))
        #expect(try nats.subscription(for: .channel("bench")) == .channel("bench"))
        #expect(throws: BenchError.self) { try nats.subscription(for: .pairs(10)) }
        #expect(throws: BenchError.self) { try nats.sender(for: .pairs(10)) }
        #expect(throws: BenchError.self) {
            try PeerDialect.nats.meeting("r0", at: try Endpoint(parsing: "ws://h:1/"), subscription: .personal)
        }
        #expect(try centrifuge.sender(for: .pairs(10)) is APISender)
        // Worker processes get the subscription in the fleet's JSON.
        for subscription in [PeerSubscription.personal, .channel("bench")] {
            let json = try JSONEncoder().encode(subscription)
            #expect(try JSONDecoder().decode(PeerSubscription.self, from: json) == subscription)
        }
    }

    // MARK: The pacer's request

    @Test func publishGoesToTheReceiversPersonalChannel() throws {
        let request = APIRequest.centrifugePublish(pairs: 4)
        #expect(request.target == "/api")
        var body = ByteBuffer()
        request.writeBody(6, 7, &body)
        #expect(String(buffer: body) == ##"{"method":"publish","params":{"channel":"#r2","data":{"seq":6,"t":7}}}"##)
        // The channel is the one receiver r2 subscribed to, the body the one ImServer's p2p sends.
        var data = ByteBuffer()
        SendPlan.writeData(seq: 6, time: 7, into: &data)
        #expect(String(buffer: body).contains(CentrifugePeer.quoted(CentrifugePeer.personalChannel(of: "r2"))))
        #expect(String(buffer: body).contains(#""data":"# + String(buffer: data) + "}}"))
        var first = ByteBuffer()
        request.writeBody(0, 1, &first)
        #expect(String(buffer: first).contains(##""channel":"#r0""##))
        try request.check(HTTPReply(status: 200, body: ByteBuffer(string: #"{"result":{}}"# + "\n")))
        #expect(throws: BenchError.self) {
            try request.check(
                HTTPReply(status: 200, body: ByteBuffer(string: #"{"error":{"code":100,"message":"x"}}"#)))
        }
        var lone = ByteBuffer()
        APIRequest.centrifugePublish(pairs: 0).writeBody(5, 1, &lone)
        #expect(String(buffer: lone).contains(##""channel":"#r0""##), "no pairs: no trap, all to r0")
    }
}
