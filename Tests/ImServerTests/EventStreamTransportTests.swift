import Foundation
import ImCore
import ImHelper
import ImServer
import ImTesting
import Testing

/// The Server-Sent Events transport (docs/protocol.md §9): the same tokens, frames, receipts,
/// limits, keepalives and close codes as a WebSocket, over `GET <path>` with
/// `Accept: text/event-stream` and posts to the stream's session.
@Suite("Event-stream transport")
struct EventStreamTransportTests {
    @Test(
        "a stream gets ready, messages and receipts like a WebSocket; its posted ack reaches the sender, a posted ping gets pong"
    )
    func messagesReceiptsAndAcks() async throws {
        try await TestCluster.with { cluster in
            let alice = try await cluster.connect("alice")
            let bob = try await cluster.connectStream("bob")

            let result = try await cluster.helper.send(.text("hi bob"), from: "alice", to: ["bob"], receipt: true)
            #expect(result.offline.isEmpty)
            let message = try await bob.next(type: "message")
            #expect(message["id"]?.string == result.id)
            #expect(message["from"]?.string == "alice")
            #expect(message["data"] == .string("hi bob"))
            #expect(message["receipt"] == .bool(true))
            #expect(try await alice.next(type: "receipt")["status"]?.string == "delivered")

            #expect(try await bob.send(text: #"{"type":"ack","id":"\#(result.id)"}"#) == 202)
            let acked = try await alice.next(type: "receipt")
            #expect(acked["status"]?.string == "acked")
            #expect(acked["to"]?.string == "bob")

            #expect(try await bob.send(text: #"{"type":"ping"}"#) == 202)
            #expect(try await bob.nextJSON()["type"]?.string == "pong")

            try await cluster.helper.join("bob", channels: ["room"])
            _ = try await cluster.helper.send(.text("to the room"), from: "alice", toChannel: "room")
            let inRoom = try await bob.next(type: "message")
            #expect(inRoom["chan"]?.string == "room")
            _ = try await cluster.helper.broadcast(.text("to all"))
            #expect(try await bob.next(type: "message")["broadcast"] == .bool(true))
        }
    }

    @Test("JSON data with line breaks between its tokens arrives as one event holding the same value")
    func lineBreaksInData() async throws {
        try await TestCluster.with { cluster in
            let bob = try await cluster.connectStream("bob")
            let data = try JSONPayload(json: "{\n  \"a\": [1,\r\n 2],\n  \"text\": \"two\\nlines\"\n}")
            _ = try await cluster.helper.send(data, from: "alice", to: ["bob"])
            let message = try await bob.next(type: "message")
            #expect(message["data"]?["a"] == .array([.number(1), .number(2)]))
            #expect(message["data"]?["text"]?.string == "two\nlines")
        }
    }

    @Test("the gatekeeper refuses a forged, a replayed and a missing token with the statuses and reasons of an upgrade")
    func refusals() async throws {
        try await TestCluster.with { cluster in
            let base = cluster.nodes[0].url
            let forged = await #expect(throws: TestClientError.self) {
                try await EventStreamClient.connect(to: base + "?token=forged")
            }
            #expect(forged.flatMap(Self.status) == 401)
            #expect(await Self.refusal(of: base) == 400)
            let url = try await cluster.url(for: "bob")
            let stream = try await EventStreamClient.connect(to: url)
            #expect(await Self.refusal(of: url) == 401)
            #expect(
                try await stream.send(text: #"{"type":"ping"}"#, session: "0123456789abcdef0123456789abcdef") == 404)
            #expect(try await stream.send(text: String(repeating: " ", count: 70_000)) == 413)
            #expect(try await stream.send(text: #"{"type":"ping"}"#) == 202, "a refused post leaves the stream open")
            #expect(try await stream.next(type: "pong", skipping: ["ready"])["type"]?.string == "pong")
            await stream.close()
        }
    }

    @Test("force offline sends the close event 4003 and ends the stream; Presence forgets the user")
    func forceOffline() async throws {
        try await TestCluster.with { cluster in
            let bob = try await cluster.connectStream("bob")
            try await cluster.helper.forceOffline("bob")
            let close = try await bob.closeEvent()
            #expect(close.code == 4003)
            #expect(close.reason == "forced offline")
            try await waitUntil { !bob.isActive }
            try await waitUntil { try await !cluster.helper.isOnline("bob") }
        }
    }

    @Test("posting frames faster than the message rate closes the stream with 4029")
    func rateLimit() async throws {
        try await TestCluster.with(configure: { configuration, _ in
            configuration.limits.messagesPerSecond = 1
            configuration.limits.messageBurst = 2
        }) { cluster in
            let bob = try await cluster.connectStream("bob")
            for _ in 0..<6 { _ = try? await bob.send(text: #"{"type":"ping"}"#) }
            #expect(try await bob.closeEvent().code == 4029)
        }
    }

    @Test("a stream that is not read is closed as a slow consumer (4008); other clients keep getting messages")
    func slowConsumer() async throws {
        try await TestCluster.with(configure: { configuration, _ in
            configuration.limits.writeBufferHighWater = 16 * 1024
            configuration.limits.maxQueuedBytes = 256 * 1024
            configuration.limits.slowConsumerTimeout = .seconds(5)
        }) { cluster in
            let slow = try await EventStreamClient.connect(
                to: try await cluster.url(for: "slow"), receiveBufferSize: 4096)
            #expect(try await slow.nextJSON()["type"]?.string == "ready")
            let fast = try await cluster.connectStream("fast")
            try await slow.setReading(false)
            try await floodUntilSlowConsumer(cluster, slow: "slow", fast: "fast", reader: fast)
            try await slow.setReading(true)
            #expect(try await slow.closeEvent(timeout: .seconds(20)).code == 4008)
        }
    }

    @Test("a posted frame that is not protocol v1 closes the stream with 1007")
    func invalidFrame() async throws {
        try await TestCluster.with { cluster in
            let bob = try await cluster.connectStream("bob")
            #expect(try await bob.send(text: #"{"type":"subscribe"}"#) == 202)
            #expect(try await bob.closeEvent().code == 1007)
        }
    }

    @Test("a request sent on the stream's socket closes it, and the user goes offline")
    func nothingFollowsTheRequest() async throws {
        try await TestCluster.with { cluster in
            let bob = try await cluster.connectStream("bob")
            let streams = try #require(cluster.nodes[0].node.otherTransports.first as? EventStreamTransport)
            #expect(streams.openStreams == 1)
            try await bob.sendSecondRequest()
            try await waitUntil { !bob.isActive }
            try await waitUntil { try await !cluster.helper.isOnline("bob") }
            try await waitUntil { streams.openStreams == 0 }
        }
    }

    @Test("the node's keepalives keep a silent stream open past the idle timeout")
    func keepalives() async throws {
        try await TestCluster.with(configure: { configuration, _ in
            // The idle timeout leaves room for a heartbeat that runs late on a busy machine;
            // 15 pings take half again as long as the timeout.
            configuration.pingInterval = .milliseconds(100)
            configuration.idleTimeout = .seconds(1)
        }) { cluster in
            let bob = try await cluster.connectStream("bob")
            var pings = 0
            while pings < 15 {
                if try await bob.next() == .ping { pings += 1 }
            }
            _ = try await cluster.helper.send(.text("still here"), from: "alice", to: ["bob"])
            #expect(try await bob.next(type: "message")["data"] == .string("still here"))
        }
    }

    @Test("a node shutting down closes its streams with 1001")
    func shutdown() async throws {
        try await TestCluster.with { cluster in
            let bob = try await cluster.connectStream("bob")
            async let close = bob.closeEvent()
            try await cluster.stop()
            #expect(try await close.code == 1001)
        }
    }

    @Test("with public.eventStreams off, the node answers a stream request as an unknown route")
    func turnedOff() async throws {
        try await TestCluster.with(configure: { configuration, _ in configuration.eventStreams = false }) { cluster in
            let url = try await cluster.url(for: "bob")
            #expect(await Self.refusal(of: url) == 404)
        }
    }

    private static func status(of error: TestClientError) -> Int? {
        if case .refused(let status, _) = error { return status }
        return nil
    }

    /// The status a stream request for `url` was refused with (`nil` when it was not).
    private static func refusal(of url: String) async -> Int? {
        do {
            let stream = try await EventStreamClient.connect(to: url)
            await stream.close()
            return nil
        } catch let error as TestClientError {
            return status(of: error)
        } catch {
            return nil
        }
    }
}
