import NIOCore
import NIOEmbedded
import Testing

@testable import imbench

/// The Centrifuge peer: the `--peer` URL, what a member sends once upgraded, the JSON protocol
/// lines it reads inside WebSocket frames (however frames split or merge them, and whatever
/// the server sends), and the pacer's `POST /api` request.
@Suite struct CentrifugePeerTests {
    /// A member on an embedded channel, its upgrade request sent (and read: ``request``).
    struct Member {
        let channel = EmbeddedChannel()
        let recorder: LoopRecorder
        let outcome: MemberOutcome.Slot
        /// The upgrade request the member wrote once connected.
        let request: String

        /// A fan-out member subscribing to `name` (none: it only connects).
        init(channel name: String? = "room") throws {
            try self.init(
                meeting: PeerMeeting(
                    endpoint: try Endpoint(parsing: "ws://h/connection/websocket"),
                    greeting: MemberHandler.centrifugeGreeting(channel: name)),
                tracker: SeqTracker(stride: 1, offset: 0))
        }

        /// A member that meets the peer as `meeting` says and tracks sequence numbers with `tracker`.
        init(meeting: PeerMeeting, tracker: SeqTracker) throws {
            recorder = LoopRecorder(eventLoop: channel.embeddedEventLoop)
            outcome = MemberOutcome.Slot(promise: channel.embeddedEventLoop.makePromise())
            let handler = MemberHandler(
                recorder: recorder, tracker: tracker,
                request: WebSocketConnector.upgradeRequest(
                    target: meeting.endpoint.target, host: meeting.endpoint.hostHeader),
                outcome: outcome, readyTimeout: .seconds(30), peerGreeting: meeting.greeting)
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            request = String(buffer: try #require(try channel.readOutbound(as: ByteBuffer.self)))
        }

        func feed(_ bytes: [UInt8]) throws { try channel.writeInbound(ByteBuffer(bytes: bytes)) }

        var delivered: Int { recorder.delivered.load(ordering: .relaxed) }

        /// Whether the attempt completed as ready (`true`), failed (`false`), or is pending (`nil`).
        func state() -> Bool? {
            var state: Bool?
            outcome.futureResult.assumeIsolated().whenComplete { result in
                if case .success(.ready) = result { state = true } else { state = false }
            }
            return state
        }

        /// The attempt's error, if it failed.
        func error() -> (any Error)? {
            var error: (any Error)?
            outcome.futureResult.assumeIsolated().whenFailure { error = $0 }
            return error
        }
    }

    static let upgraded = Array(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".utf8)
    static let replies =
        #"{"id":1,"result":{"client":"c1","version":""}}"# + "\n" + #"{"id":2,"result":{}}"# + "\n"
    /// The connect accepted, the subscribe refused (Centrifuge's "permission denied").
    static let refused =
        #"{"id":1,"result":{"client":"c1","version":""}}"# + "\n"
        + #"{"id":2,"error":{"code":103,"message":"permission denied"}}"# + "\n"

    /// One server frame (unmasked) with any payload length.
    static func frame(_ text: String, opcode: UInt8 = WireFrame.text, final: Bool = true) -> [UInt8] {
        frame(Array(text.utf8), opcode: opcode, final: final)
    }

    static func frame(_ payload: [UInt8], opcode: UInt8 = WireFrame.text, final: Bool = true) -> [UInt8] {
        var bytes: [UInt8] = [(final ? 0x80 : 0) | opcode]
        if payload.count < 126 {
            bytes.append(UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            bytes += [126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            bytes.append(127)
            for shift in stride(from: 56, through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: payload.count >> shift))
            }
        }
        return bytes + payload
    }

    /// A publication push of the benchmark's body, as the library writes it.
    static func publication(_ seq: Int, channel: String = "room") -> String {
        #"{"result":{"channel":"\#(channel)","data":{"data":{"seq":\#(seq),"t":1}}}}"# + "\n"
    }

    /// The payload of a client frame (masked, as a client must).
    static func unmasked(_ frame: ByteBuffer) throws -> (opcode: UInt8, text: String) {
        let bytes = Array(frame.readableBytesView)
        try #require(bytes.count >= 6 && bytes[1] & 0x80 != 0)
        var length = Int(bytes[1] & 0x7F)
        var start = 2
        if length == 126 {
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            start = 4
        }
        let mask = Array(bytes[start..<start + 4])
        let payload = bytes[(start + 4)...].enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try #require(payload.count == length)
        return (bytes[0], String(decoding: payload, as: UTF8.self))
    }

    // MARK: The --peer URL

    @Test func peerURL() throws {
        #expect(
            try CentrifugePeer(parsing: "centrifuge://127.0.0.1:7800").api == Endpoint(parsing: "http://127.0.0.1:7800")
        )
        #expect(try CentrifugePeer(parsing: "centrifuge://localhost").api.port == 8000)
        #expect(try CentrifugePeer(parsing: "centrifuge://[::1]:7800/").api.hostHeader == "[::1]:7800")
        for bad in [
            "http://127.0.0.1:7800", "centrifuge://", "centrifuge://h:1/api", "centrifuge://h:1?x=1",
            "centrifuge://h:0",
        ] {
            #expect(throws: BenchError.self, "\(bad)") { try CentrifugePeer(parsing: bad) }
        }
        #expect(
            try Peer(parsing: "centrifuge://127.0.0.1:7800")
                == .centrifuge(CentrifugePeer(parsing: "centrifuge://127.0.0.1:7800")))
        #expect(try Peer(parsing: "nats://127.0.0.1:4333") == .nats(NATSPeer(host: "127.0.0.1", port: 4333)))
        #expect(try Peer(parsing: "centrifuge://h:1").dialect == .centrifuge)
        #expect(throws: BenchError.self) { try Peer(parsing: "ws://127.0.0.1:7801/connection/websocket") }
        #expect(throws: BenchError.self) { try Peer(parsing: "centrifuge") }
    }

    // MARK: The member's greeting

    @Test func greetingConnectsThenSubscribesInOneTextFrame() throws {
        let member = try Member()
        try member.feed(Self.upgraded)
        let greeting = try Self.unmasked(try #require(try member.channel.readOutbound(as: ByteBuffer.self)))
        #expect(greeting.opcode == 0x81, "a final text frame: the JSON protocol")
        #expect(
            greeting.text == #"{"id":1,"params":{}}"# + "\n" + #"{"id":2,"method":1,"params":{"channel":"room"}}"#
                + "\n")
        #expect(member.state() == nil)
    }

    @Test func greetingWithoutChannelOnlyConnects() throws {
        guard case .centrifuge(let bytes, let readyID) = MemberHandler.centrifugeGreeting(channel: nil) else {
            Issue.record("not a Centrifuge greeting")
            return
        }
        #expect(String(buffer: bytes) == #"{"id":1,"params":{}}"# + "\n")
        #expect(readyID == 1)
        guard case .centrifuge(let quoted, 2) = MemberHandler.centrifugeGreeting(channel: "a\"b\\c\n\u{1}") else {
            Issue.record("not a Centrifuge greeting with a subscribe")
            return
        }
        #expect(String(buffer: quoted).hasSuffix(#""channel":"a\"b\\c\n\u0001"}}"# + "\n"))
    }

    @Test func connectOnlyMemberIsReadyOnTheConnectReply() throws {
        let member = try Member(channel: nil)
        try member.feed(Self.upgraded + Self.frame(#"{"id":1,"result":{"client":"c1","version":""}}"# + "\n"))
        #expect(member.state() == true)
    }

    // MARK: Reading replies and publications

    @Test func readyOnTheSubscribeReplyThenPublicationsMergedAndSplit() throws {
        let member = try Member()
        // The connect reply alone is not ready: the subscribe reply is.
        try member.feed(Self.upgraded + Self.frame(#"{"id":1,"result":{"client":"c1","version":""}}"# + "\n"))
        #expect(member.state() == nil)
        try member.feed(Self.frame(#"{"id":2,"result":{}}"# + "\n" + Self.publication(0)))
        #expect(member.state() == true)
        #expect(member.delivered == 1)
        // Several lines in one frame (the library's writer merges up to four).
        try member.feed(Self.frame(Self.publication(1) + Self.publication(2) + Self.publication(3)))
        #expect(member.delivered == 4)
        // One line split over a message's fragments: text (not final), continuation, continuation.
        let line = Self.publication(4)
        let cut = line.index(line.startIndex, offsetBy: 30)
        try member.feed(
            Self.frame(String(line[..<cut]), final: false)
                + Self.frame(String(line[cut...].dropLast()), opcode: WireFrame.continuation, final: false)
                + Self.frame("\n", opcode: WireFrame.continuation))
        #expect(member.delivered == 5)
        #expect(member.recorder.members.first?.tracker.received == 5)
        #expect(member.recorder.members.first?.tracker.duplicates == 0)
    }

    @Test func everyByteBoundaryIsCrossed() throws {
        let member = try Member()
        let stream =
            Self.upgraded + Self.frame(Self.replies) + Self.frame(Self.publication(0) + Self.publication(1))
            + Self.frame([UInt8](), opcode: WireFrame.ping)  // a server ping between messages
            + Self.frame(Self.publication(2))
        for byte in stream { try member.feed([byte]) }
        #expect(member.state() == true)
        #expect(member.delivered == 3)
    }

    @Test func aMessageEndsItsLastLineWithoutNewline() throws {
        let member = try Member()
        try member.feed(Self.upgraded + Self.frame(Self.replies))
        try member.feed(Self.frame(String(Self.publication(0).dropLast())))
        #expect(member.delivered == 1)
    }

    @Test func publicationShapesAndOtherPushes() throws {
        let member = try Member()
        try member.feed(Self.upgraded + Self.frame(Self.replies))
        let lines = [
            // Seq and gen before the data (the library's legacy UseSeqGen), info and offset after.
            #"{"result":{"channel":"room","data":{"seq":77,"gen":1,"uid":"u","data":{"seq":0,"t":5},"info":{"user":"seq","client":"c"},"offset":9}}}"#,
            // Members in another order, spaces around them.
            #" { "result" : { "data" : { "data" : {"seq":1,"t":5} } , "type" : 0 , "channel" : "room" } } "#,
            // A join (type 1) and a message push (type 4) are not deliveries, whatever they hold.
            #"{"result":{"type":1,"channel":"room","data":{"info":{"user":"u","client":"c"},"data":{"seq":9,"t":5}}}}"#,
            #"{"result":{"type":4,"data":{"data":{"seq":8,"t":5}}}}"#,
            // A reply to a command the member did not send, and an empty line.
            #"{"id":7,"result":{}}"#, "",
        ]
        try member.feed(Self.frame(lines.joined(separator: "\n") + "\n"))
        #expect(member.delivered == 2)
        #expect(member.recorder.members.first?.tracker.received == 2)
        #expect(member.channel.isActive)
    }

    @Test func anErrorReplyFailsTheAttempt() throws {
        let member = try Member()
        try member.feed(Self.upgraded + Self.frame(Self.refused))
        #expect(member.state() == false)
        #expect(member.error().map { "\($0)" }?.contains("permission denied") == true)
        #expect(!member.channel.isActive)
    }

    @Test(arguments: [
        "not json", #"{"result":"#, #"{"id":"1","result":{}}"#, #"{"id":-1}"#, #"{"id":4294967296}"#,
        #"{"id":1}x"#, #"{"result":{"channel":"room"}}"#, #"{"result":{"data":{"info":{}}}}"#, "[1,2]",
        #"{"result":{"type":"x","data":{"data":{}}}}"#,
    ])
    func malformedLinesFailTheAttempt(line: String) throws {
        let member = try Member()
        try member.feed(Self.upgraded + Self.frame(line + "\n"))
        #expect(member.state() == false, "\(line)")
        #expect(!member.channel.isActive)
    }

    @Test func aLineWithoutEndIsBounded() throws {
        let member = try Member()
        try member.feed(Self.upgraded + Self.frame(Self.replies))
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: MemberHandler.maxFrameSize / 2 + 1)
        try member.feed(Self.frame(chunk, final: false))
        #expect(member.channel.isActive, "half the limit is held")
        try member.feed(Self.frame(chunk, opcode: WireFrame.continuation, final: false))
        #expect(!member.channel.isActive, "over the limit without a newline")
    }

    // MARK: The scanner on hostile bytes

    private static func scan(_ text: String) -> CentrifugeScanner.Line? {
        Array(text.utf8).withUnsafeBytes { CentrifugeScanner.line($0) }
    }

    @Test func scannerReadsRepliesAndPushes() {
        #expect(Self.scan(#"{"id":2,"result":{}}"#) == .reply(id: 2, failed: false))
        #expect(
            Self.scan(#"{"id":4294967295,"error":{"code":1,"message":"x"}}"#) == .reply(id: 4_294_967_295, failed: true)
        )
        #expect(Self.scan(#"{"error":{"code":1}}"#) == .reply(id: 0, failed: true))
        #expect(Self.scan("{}") == .other)
        #expect(Self.scan(#"{"i\"d":1}"#) == .other, "an escaped key is not `id`")
        let push = #"{"result":{"channel":"r\"}\\","data":{"data":{"seq":3,"t":4}}}}"#
        guard case .publication(let data)? = Self.scan(push) else {
            Issue.record("not a publication")
            return
        }
        #expect(String(decoding: Array(push.utf8)[data], as: UTF8.self) == #"{"seq":3,"t":4}"#)
    }

    @Test func scannerNeverTrapsOnHostileBytes() {
        let deep = #"{"result":{"data":{"data":"# + String(repeating: "[", count: 100_000) + "}}}"
        #expect(Self.scan(deep) == nil)
        let deepClosed = #"{"x":"# + String(repeating: "[", count: 50_000) + String(repeating: "]", count: 50_000) + "}"
        #expect(Self.scan(deepClosed) == .other)
        for text in [
            "", "{", "}", "{\"", #"{"id""#, #"{"id":"#, #"{"id":1"#, #"{"id":1,"#, #"{"a":"\"#, #"{"a":"\\"#,
            #"{"id":99999999999999999999999}"#, #"{"id":1.5}"#, #"{"id":true}"#, #"{"result":{"data":{"data"}}}"#,
            "\u{0}\u{FF}", #"{"a":]}"#, #"{"a":}"#, #"{,}"#, #"{"a":1,}"#,
        ] {
            #expect(Self.scan(text) == nil, "\(text)")
        }
        // Random bytes from JSON's alphabet: any answer, never a trap or an out-of-range slice.
        var generator = SplitMix(seed: 42)
        let alphabet = Array(#"{}[]":,\ 0123456789-.aeltrsuidyp"#.utf8)
        for _ in 0..<20_000 {
            let count = Int(generator.next() % 48)
            let bytes = (0..<count).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
            let line = bytes.withUnsafeBytes { CentrifugeScanner.line($0) }
            if case .publication(let data)? = line { #expect(data.lowerBound >= 0 && data.upperBound <= count) }
        }
    }

    /// A seeded generator, so that a failure repeats.
    private struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    // MARK: The pacer's request

    @Test func publishRequestIsCentrifugosServerAPI() throws {
        let request = APIRequest.centrifugePublish(channel: "room")
        #expect(request.target == "/api")
        var body = ByteBuffer()
        request.writeBody(3, 7, &body)
        #expect(String(buffer: body) == #"{"method":"publish","params":{"channel":"room","data":{"seq":3,"t":7}}}"#)
        try request.check(HTTPReply(status: 200, body: ByteBuffer(string: #"{"result":{}}"# + "\n")))
        #expect(throws: BenchError.self) {
            try request.check(
                HTTPReply(status: 200, body: ByteBuffer(string: #"{"error":{"code":104,"message":"x"}}"#)))
        }
        #expect(throws: BenchError.self) {
            try request.check(HTTPReply(status: 400, body: ByteBuffer(string: #"{"result":{}}"#)))
        }
        var quoted = ByteBuffer()
        APIRequest.centrifugePublish(channel: #"a"b"#).writeBody(0, 0, &quoted)
        #expect(String(buffer: quoted).contains(#""channel":"a\"b","#))
    }
}
