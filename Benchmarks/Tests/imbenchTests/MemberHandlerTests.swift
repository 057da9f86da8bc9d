import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import imbench

/// One benchmark client socket on an embedded channel: the upgrade request it writes, the
/// response and frames it reads however the bytes are split, and refusals.
@Suite struct MemberHandlerTests {
    private struct Harness {
        let channel = EmbeddedChannel()
        let recorder: LoopRecorder
        let outcome: MemberOutcome.Slot
        let handler: MemberHandler

        init() throws {
            recorder = LoopRecorder(eventLoop: channel.embeddedEventLoop)
            outcome = MemberOutcome.Slot(promise: channel.embeddedEventLoop.makePromise())
            let request = WebSocketConnector.upgradeRequest(target: "/ws?token=abc", host: "127.0.0.1:1")
            handler = MemberHandler(
                recorder: recorder, tracker: SeqTracker(stride: 1, offset: 0), request: request,
                outcome: outcome, readyTimeout: .seconds(30))
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        func feed(_ bytes: [UInt8]) throws { try channel.writeInbound(ByteBuffer(bytes: bytes)) }

        func written() throws -> [UInt8] {
            var all: [UInt8] = []
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { all += buffer.readableBytesView }
            return all
        }
    }

    private static let response = Array(
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            + "Connection: upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n").utf8)

    private static func text(_ json: String) -> [UInt8] {
        let payload = Array(json.utf8)
        precondition(payload.count < 126)
        return [0x81, UInt8(payload.count)] + payload
    }

    @Test func writesAnUpgradeRequest() throws {
        let harness = try Harness()
        let request = String(decoding: try harness.written(), as: UTF8.self)
        #expect(request.hasPrefix("GET /ws?token=abc HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"))
        #expect(request.contains("Upgrade: websocket\r\n"))
        #expect(request.contains("Sec-WebSocket-Version: 13\r\n"))
        #expect(request.range(of: #"Sec-WebSocket-Key: [A-Za-z0-9+/]{22}==\r\n"#, options: .regularExpression) != nil)
        #expect(request.hasSuffix("\r\n\r\n"))
    }

    @Test func readyAndMessagesSplitAcrossReads() throws {
        let harness = try Harness()
        var outcome: MemberOutcome?
        harness.outcome.futureResult.assumeIsolated().whenSuccess { outcome = $0 }
        let stream =
            Self.response + Self.text(#"{"type":"ready","client":"u"}"#)
            + Self.text(#"{"type":"message","id":"1","data":{"seq":0,"t":1}}"#)
            + Self.text(#"{"type":"message","id":"2","data":{"seq":1,"t":1}}"#)
        // One byte at a time: every boundary (head, frame header, payload) is crossed.
        for byte in stream { try harness.feed([byte]) }
        guard case .ready? = outcome else {
            Issue.record("expected ready, got \(String(describing: outcome))")
            return
        }
        #expect(harness.recorder.delivered.load(ordering: .relaxed) == 2)
        #expect(harness.recorder.members.count == 1)
        #expect(harness.recorder.members.first?.tracker.received == 2)
    }

    /// The compact encoding (protocol.md §9): binary frames, MessagePack arrays whose first
    /// element is the type; the message's data (the benchmark's JSON) is a string inside.
    @Test func compactFramesAreRead() throws {
        let harness = try Harness()
        var outcome: MemberOutcome?
        harness.outcome.futureResult.assumeIsolated().whenSuccess { outcome = $0 }
        let ready: [UInt8] = [0x93, 0x00, 0xA1, UInt8(ascii: "u"), 0xA1, UInt8(ascii: "n")]
        func message(_ seq: Int) -> [UInt8] {
            let data = Array(#"{"seq":\#(seq),"t":1}"#.utf8)
            return [0x97, 0x01, 0xA1, UInt8(ascii: "1"), 0xA1, UInt8(ascii: "a"), 0xC0, 0x05, 0x00]
                + [0xA0 | UInt8(data.count)] + data
        }
        func binary(_ payload: [UInt8]) -> [UInt8] { [0x82, UInt8(payload.count)] + payload }
        let stream = Self.response + binary(ready) + binary(message(0)) + binary(message(1))
        for byte in stream { try harness.feed([byte]) }
        guard case .ready? = outcome else {
            Issue.record("expected ready, got \(String(describing: outcome))")
            return
        }
        #expect(harness.recorder.delivered.load(ordering: .relaxed) == 2)
        #expect(harness.recorder.members.first?.tracker.received == 2)
        let request = WebSocketConnector.upgradeRequest(target: "/ws", host: "h", compact: true)
        #expect(String(buffer: request).contains("Sec-WebSocket-Protocol: imserver.v1.msgpack\r\n"))
    }

    @Test func answersPingWithMaskedPong() throws {
        let harness = try Harness()
        _ = try harness.written()
        try harness.feed(Self.response + [0x89, 2, 7, 8])
        let pong = try harness.written()
        #expect(pong.count == 8)
        #expect(pong[0] == 0x8A && pong[1] == 0x82)
        #expect([pong[6] ^ pong[2], pong[7] ^ pong[3]] == [7, 8])
    }

    @Test func refusalCarriesStatusAndReason() throws {
        let harness = try Harness()
        var outcome: MemberOutcome?
        harness.outcome.futureResult.assumeIsolated().whenSuccess { outcome = $0 }
        try harness.feed(Array("HTTP/1.1 401 Unauthorized\r\ncontent-length: 15\r\n\r\ntoken expired\r\n".utf8))
        try harness.channel.close().wait()
        guard case .refused(let status, let reason)? = outcome else {
            Issue.record("expected a refusal, got \(String(describing: outcome))")
            return
        }
        #expect(status == 401)
        #expect(reason == "token expired")
    }

    @Test func responseHeadIsFoundAndItsStatusRead() {
        func head(_ text: String) -> (length: Int, status: UInt?)? {
            Array(text.utf8).withUnsafeBytes { MemberHandler.responseHead(in: $0) }
        }
        #expect(head("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket") == nil)
        #expect(head("HTTP/1.1 101 Switching\r\n\r") == nil)
        let whole = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
        #expect(head(whole + "\u{81}\u{2}{}")?.length == whole.utf8.count)
        #expect(head(whole)?.status == 101)
        #expect(head("HTTP/1.1 503 Service Unavailable\r\r\n\r\n")?.status == 503)
        #expect(head("HTTP/1.1 503 Service Unavailable\r\r\n\r\n")?.length == 37)
        #expect(head("HTTP/1.0 200 OK\r\n\r\n")?.status == nil)
        #expect(head("HTTP/1.1 2x0 OK\r\n\r\n")?.status == nil)
        #expect(head("\r\n\r\n")?.status == nil)
    }

    @Test func garbageFailsTheAttempt() throws {
        let harness = try Harness()
        var failure: (any Error)?
        harness.outcome.futureResult.assumeIsolated().whenFailure { failure = $0 }
        try harness.feed(Array("SSH-2.0-OpenSSH\r\n\r\n".utf8))
        #expect(failure is MemberError)
        #expect(!harness.channel.isActive)
    }
}

/// A connect that fails before any handler sees the socket completes the attempt once, with
/// the connect error; the slot that guards it takes only the first outcome.
@Suite struct WebSocketConnectorTests {
    @Test(.timeLimit(.minutes(1))) func refusedConnectFailsTheAttempt() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let connector = WebSocketConnector(recorders: Recorders(group: group), readyTimeout: .seconds(30))
        // Port 1 on loopback: nothing listens there, so the connect is refused at once.
        let endpoint = try Endpoint(parsing: "ws://127.0.0.1:1/ws?token=x")
        let attempt = connector.connect(
            to: endpoint, from: nil, tracker: SeqTracker(stride: 0, offset: 0),
            on: group.next())
        // The ready timeout is far away: a connect failure that did not reach the attempt would
        // hang here (the test's time limit) or end as `readyTimeout`.
        let error = await #expect(throws: (any Error).self) { try await attempt.get() }
        #expect(!(error is MemberError), "failed by the connect itself, not by a timer: \(String(describing: error))")
        try await group.shutdownGracefully()
    }

    @Test func anAttemptCompletesOnceWithItsFirstOutcome() throws {
        let loop = EmbeddedEventLoop()
        let slot = MemberOutcome.Slot(promise: loop.makePromise())
        var outcomes: [String] = []
        slot.futureResult.assumeIsolated().whenComplete { outcomes.append("\($0)") }
        #expect(slot.isPending)
        slot.fail(MemberError.readyTimeout)
        slot.succeed(.ready(1))
        slot.fail(MemberError.closedBeforeReady(nil))
        #expect(!slot.isPending)
        #expect(outcomes.count == 1)
        #expect(outcomes.first?.contains("no ready frame in time") == true)
    }
}
