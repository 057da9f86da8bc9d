import Foundation
import ImCore
import ImHelper
import ImServer
import ImTesting
import NIOCore
import Testing

@Suite("Bad input is refused clearly and hurts nobody else")
struct BadInputTests {
    private func refusal(_ url: String) async throws -> (Int, String) {
        do {
            let client = try await TestClient.connect(to: url)
            await client.close()
            Issue.record("the upgrade was accepted")
            return (101, "")
        } catch TestClientError.refused(let status, let reason) {
            return (status, reason)
        }
    }

    @Test("forged, expired, replayed and missing tokens are refused before the upgrade")
    func badTokens() async throws {
        try await TestCluster.with { cluster in
            let base = cluster.nodes[0].url

            let forger = try await ConnectTokens(secret: "not-the-server-secret-but-32-bytes-long")
            let forged = try await forger.mint(for: "mallory")
            let (forgedStatus, forgedReason) = try await refusal(base + "?token=" + forged)
            #expect(forgedStatus == 401)
            #expect(forgedReason == TokenError.badSignature.description)

            let stale = try await cluster.helper.tokens.mint(
                for: "alice", lifetime: .seconds(30),
                now: Date().addingTimeInterval(-60))
            let (expiredStatus, expiredReason) = try await refusal(base + "?token=" + stale)
            #expect(expiredStatus == 401)
            #expect(expiredReason == TokenError.expired.description)

            let url = try await cluster.url(for: "alice")
            let first = try await TestClient.connect(to: url)
            let (replayStatus, replayReason) = try await refusal(url)
            #expect(replayStatus == 401)
            #expect(replayReason == TokenError.replayed.description)
            await first.close()

            let (missingStatus, _) = try await refusal(base)
            #expect(missingStatus == 400)
            let (garbageStatus, garbageReason) = try await refusal(base + "?token=garbage")
            #expect(garbageStatus == 401)
            #expect(garbageReason.hasPrefix("malformed token"))
            let (pathStatus, _) = try await refusal("ws://127.0.0.1:\(cluster.nodes[0].port)/elsewhere?token=x")
            #expect(pathStatus == 404)

            try await expectStillServing(cluster)
        }
    }

    @Test("a frame over the size limit closes that connection with 1009")
    func oversizedFrame() async throws {
        try await TestCluster.with(configure: { configuration, _ in configuration.limits.maxFrameSize = 1024 }) {
            cluster in
            let other = try await cluster.connect("other")
            let big = try await cluster.connect("big")
            try await big.send(text: #"{"type":"ping","pad":""# + String(repeating: "x", count: 4096) + #""}"#)
            #expect(try await big.closeCode() == 1009)
            try await cluster.helper.send(.text("fine"), from: "x", to: ["other"])
            #expect(try await other.next(type: "message")["data"] == .string("fine"))
            try await expectStillServing(cluster)
        }
    }

    @Test("malformed JSON and unknown frame types close with 1007; binary frames with 1003")
    func malformedFrames() async throws {
        try await TestCluster.with { cluster in
            for text in ["this is not json", #"{"type":"teleport"}"#, #"{"type":"ack"}"#, "[1,2,3]"] {
                let client = try await cluster.connect("bad")
                try await client.send(text: text)
                #expect(try await client.closeCode() == 1007, "\(text)")
            }
            let binary = try await cluster.connect("binary")
            try await binary.send(opcode: .binary, data: ByteBuffer(bytes: [0, 1, 2]))
            #expect(try await binary.closeCode() == 1003)
            try await expectStillServing(cluster)
        }
    }

    @Test("a client sending faster than the message rate limit is closed with 4029")
    func rateLimit() async throws {
        try await TestCluster.with(configure: { configuration, _ in
            configuration.limits.messagesPerSecond = 5
            configuration.limits.messageBurst = 5
        }) { cluster in
            let chatty = try await cluster.connect("chatty")
            for _ in 0..<50 {
                do { try await chatty.send(text: #"{"type":"ping"}"#) } catch { break }
            }
            #expect(try await chatty.closeCode() == 4029)
            try await expectStillServing(cluster)
        }
    }

    @Test("a client that answers no pings is closed with 4009 after the idle timeout")
    func idleTimeout() async throws {
        try await TestCluster.with(configure: { configuration, _ in
            // A second for an answer: on a loaded machine (the whole suite at once, two cores) a
            // pong that answered in time once took longer than 400 ms to be read.
            configuration.pingInterval = .milliseconds(100)
            configuration.idleTimeout = .seconds(1)
        }) { cluster in
            var silent = TestClient.Options()
            silent.respondToPings = false
            let sleeper = try await cluster.connect("sleeper", options: silent)
            let awake = try await cluster.connect("awake")
            #expect(try await sleeper.closeCode() == 4009)
            #expect(awake.isActive, "a client that answers pings stays connected")
            try await expectStillServing(cluster)
        }
    }

    @Test("a client that never reads is closed with 4008; everyone else keeps getting messages")
    func slowConsumer() async throws {
        try await TestCluster.with(configure: { configuration, _ in
            configuration.limits.writeBufferHighWater = 16 * 1024
            configuration.limits.maxQueuedBytes = 256 * 1024
            configuration.limits.slowConsumerTimeout = .seconds(5)
        }) { cluster in
            var options = TestClient.Options()
            options.receiveBufferSize = 4096
            let slow = try await cluster.connect("slow", options: options)
            let fast = try await cluster.connect("fast")
            try await slow.setReading(false)
            try await floodUntilSlowConsumer(cluster, slow: "slow", fast: "fast", reader: fast)
            try await slow.setReading(true)
            #expect(try await slow.closeCode(timeout: .seconds(20)) == 4008)
            try await cluster.helper.send(.text("after"), from: "x", to: ["fast"])
            #expect(try await fast.next(type: "message")["data"] == .string("after"))
        }
    }
}

@Suite("Sockets that never finish their upgrade are closed")
struct HandshakeTimeoutTests {
    @Test(
        "an unfinished upgrade request and a silent socket are closed after limits.handshakeTimeout; others are served")
    func unfinishedRequests() async throws {
        try await TestCluster.with(configure: { configuration, _ in
            // Long enough that the partial request below is written before it runs out, even on
            // a loaded machine.
            configuration.limits.handshakeTimeout = .seconds(1)
        }) { cluster in
            let node = cluster.nodes[0]
            let port = node.port
            // Upgraded first: its own timeout would fire before those of the sockets opened below.
            let client = try await cluster.connect("in-time")
            let partial = try await StreamingHTTP.open(port: port, request: "GET /ws?token=abc HTTP/1.1\r\nHost: x\r\n")
            let silent = try await StreamingHTTP.open(port: port, request: "")
            // The node closes both: reading ends (no marker arrives) well within the wait.
            let started = ContinuousClock.now
            #expect(try await partial.read(until: "never sent", timeout: .seconds(10)) == "")
            #expect(try await silent.read(until: "never sent", timeout: .seconds(10)) == "")
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(node.node.core.stats.refusals(status: 408) == 2)
            // Those closes came after the upgraded client's timeout would have: it is still served.
            #expect(client.isActive, "an upgraded connection outlives the handshake timeout")
            let result = try await cluster.helper.send(.text("hello"), from: "x", to: ["in-time"])
            #expect(try await client.next(type: "message")["id"]?.string == result.id)
        }
    }
}
