import Foundation
import ImCore
import ImHelper
import ImTesting
import NIOCore
import NIOWebSocket
import Testing

@testable import ImServer

@Suite("Hostile and careless clients cost bounded memory and get clear answers")
struct HardeningTests {
    @Test("closed connections leave no handler, context or place behind")
    func closedConnectionsAreFreed() async throws {
        try await TestCluster.with { cluster in
            let core = cluster.nodes[0].node.core
            var clients: [TestClient] = []
            for index in 0..<40 { clients.append(try await cluster.connect(ClientID(rawValue: "user-\(index % 10)"))) }
            #expect(core.stats.connectionsInMemory == 40)
            // Half close themselves; the node closes the other half (forced offline).
            for client in clients.prefix(20) { await client.close() }
            for index in 0..<10 { try await cluster.helper.forceOffline(ClientID(rawValue: "user-\(index)")) }
            for client in clients.suffix(20) { _ = try await client.closeCode() }
            try await waitUntil { core.stats.openConnections == 0 }
            await core.registrar.waitUntilSettled()
            // Freed once the channels are gone: a loop turn or two after the close.
            try await waitUntil { core.stats.connectionsInMemory == 0 }
            #expect(core.slots.taken == (0, 0))
            try await expectStillServing(cluster)
        }
    }

    @Test("simultaneous handshakes cannot overshoot the per-node and per-user limits")
    func limitsHoldUnderConcurrentHandshakes() async throws {
        try await TestCluster.with(configure: { configuration, _ in
            configuration.limits.connectionsPerNode = 6
            configuration.limits.connectionsPerUser = 3
        }) { cluster in
            let perUser = try await Self.connectConcurrently(cluster, users: Array(repeating: "same", count: 16))
            #expect(perUser.count == 3, "at most connectionsPerUser connections for one user")
            for client in perUser { await client.close() }
            let core = cluster.nodes[0].node.core
            try await waitUntil { core.slots.taken == (0, 0) }
            let users = (0..<30).map { ClientID(rawValue: "u\($0)") }
            let fullBefore = core.stats.refusals(status: 503)
            let perNode = try await Self.connectConcurrently(cluster, users: users)
            #expect(perNode.count == 6, "at most connectionsPerNode connections")
            #expect(core.stats.refusals(status: 503) - fullBefore == 24)
            for client in perNode { await client.close() }
            try await waitUntil { core.slots.taken == (0, 0) }
            try await expectStillServing(cluster)
        }
    }

    private static func connectConcurrently(_ cluster: TestCluster, users: [ClientID]) async throws -> [TestClient] {
        var urls: [String] = []
        for user in users { urls.append(try await cluster.url(for: user)) }
        return await withTaskGroup(of: TestClient?.self) { group in
            for url in urls {
                group.addTask { try? await TestClient.connect(to: url) }
            }
            var connected: [TestClient] = []
            for await client in group { if let client { connected.append(client) } }
            return connected
        }
    }

    @Test("a client that reads receipt-requesting messages late and acks every one is not rate limited")
    func lateAcksAreNotCounted() async throws {
        try await TestCluster.with(configure: { configuration, _ in
            configuration.limits.pendingAcks = 100
            configuration.limits.messagesPerSecond = 5
            configuration.limits.messageBurst = 5
        }) { cluster in
            let sender = try await cluster.connect("sender")
            let reader = try await cluster.connect("reader")
            let count = 300
            let messages = (0..<count).map {
                OutgoingMessage(.text("m\($0)"), from: "sender", to: ["reader"], receipt: true)
            }
            _ = try await cluster.helper.send(messages)
            var ids: [String] = []
            for _ in 0..<count {
                let message = try await reader.next(type: "message")
                #expect(message["receipt"] == .bool(true))
                ids.append(message["id"]?.string ?? "")
            }
            for id in ids { try await reader.send(text: #"{"type":"ack","id":"\#(id)"}"#) }
            // The newest `pendingAcks` become `acked` receipts; the rest are free but report nothing.
            var acked = 0
            while acked < 100 {
                let receipt = try await sender.next(type: "receipt")
                if receipt["status"]?.string == "acked" { acked += 1 }
            }
            let after = try await cluster.helper.send(.text("after"), from: "x", to: ["reader"])
            #expect(try await reader.next(type: "message")["id"]?.string == after.id, "still connected")
            #expect(cluster.nodes[0].node.core.stats.closes(.tooManyMessages) == 0)
            // Acks beyond what the node sent still count.
            for _ in 0..<20 { try? await reader.send(text: #"{"type":"ack","id":"made-up"}"#) }
            #expect(try await reader.closeCode() == 4029)
        }
    }

    @Test("a flood of WebSocket pings is rate limited (4029) and answered at most once per ping")
    func pingFlood() async throws {
        try await TestCluster.with(configure: { configuration, _ in
            configuration.limits.messagesPerSecond = 5
            configuration.limits.messageBurst = 10
        }) { cluster in
            let flooder = try await cluster.connect("flooder")
            let payload = ByteBuffer(bytes: Array(repeating: 0x70, count: 125))
            for _ in 0..<200 {
                do { try await flooder.send(opcode: .ping, data: payload) } catch { break }
            }
            #expect(try await flooder.closeCode() == 4029)
            try await expectStillServing(cluster)
        }
    }

    @Test(
        "frames RFC 6455 forbids close the connection with 1002 or 1007 and the reason",
        arguments: [
            ("unmasked", WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: #"{"type":"ping"}"#)), 1002),
            (
                "reserved bit",
                WebSocketFrame(
                    fin: true, rsv2: true, opcode: .text, maskKey: .random(),
                    data: ByteBuffer(string: #"{"type":"ping"}"#)), 1002
            ),
            (
                "reserved opcode",
                WebSocketFrame(
                    fin: true, opcode: WebSocketOpcode(encodedWebSocketOpcode: 5)!,
                    maskKey: .random(), data: ByteBuffer()), 1002
            ),
            (
                "lone continuation",
                WebSocketFrame(
                    fin: true, opcode: .continuation, maskKey: .random(),
                    data: ByteBuffer(string: "x")), 1002
            ),
            (
                "fragmented ping", WebSocketFrame(fin: false, opcode: .ping, maskKey: .random(), data: ByteBuffer()),
                1002
            ),
            (
                "invalid UTF-8",
                WebSocketFrame(
                    fin: true, opcode: .text, maskKey: .random(),
                    data: ByteBuffer(bytes: [0x7B, 0xC3, 0x28, 0x7D])), 1007
            ),
            (
                "close code 1005",
                WebSocketFrame(
                    fin: true, opcode: .connectionClose, maskKey: .random(),
                    data: ByteBuffer(bytes: [0x03, 0xED])), 1002
            ),
        ] as [(String, WebSocketFrame, UInt16)])
    func forbiddenFrames(_ name: String, _ frame: WebSocketFrame, _ code: UInt16) async throws {
        try await TestCluster.with { cluster in
            let client = try await cluster.connect("strict")
            try await client.send(frame)
            var closing: TestClient.Frame?
            while closing == nil {
                if case .close(let code, let reason) = try await client.next() {
                    closing = .close(code: code, reason: reason)
                }
            }
            guard case .close(let received, let reason)? = closing else { return }
            #expect(received == code, "\(name): \(reason)")
            #expect(!reason.isEmpty)
            try await expectStillServing(cluster)
        }
    }

    @Test("a fragmented message interrupted by a new one closes with 1002 before the socket closes")
    func interruptedFragments() async throws {
        try await TestCluster.with { cluster in
            let client = try await cluster.connect("fragments")
            try await client.send(opcode: .text, data: ByteBuffer(string: #"{"type":"#), fin: false)
            try await client.send(opcode: .text, data: ByteBuffer(string: #"{"type":"ping"}"#))
            #expect(try await client.closeCode() == 1002)
        }
    }

    @Test("forged tokens are not charged to the node-wide handshake budget; genuine users still get in")
    func forgedTokensDoNotLockOthersOut() async throws {
        try await TestCluster.with(configure: { configuration, _ in
            configuration.limits.handshakesPerSecond = 2  // a burst of one
        }) { cluster in
            let forger = try await ConnectTokens(secret: "not-the-server-secret-but-32-bytes-long")
            let base = cluster.nodes[0].url + "?token="
            var statuses: [Int: Int] = [:]
            for _ in 0..<30 {
                do {
                    let client = try await TestClient.connect(to: base + (try await forger.mint(for: "mallory")))
                    await client.close()
                } catch TestClientError.refused(let status, _) {
                    statuses[status, default: 0] += 1
                }
            }
            #expect(statuses == [401: 30])
            let genuine = try await cluster.connect("genuine")
            await genuine.close()
        }
    }

    @Test("each source address has its own handshake budget, and the table of sources is bounded")
    func perSourceBudget() throws {
        let limiter = SourceRateLimiter(rate: 1, burst: 3, capacity: 4)
        let now = NIODeadline.now()
        let one = try SourceRateLimiter.Source(SocketAddress(ipAddress: "127.0.0.2", port: 1))
        let two = try SourceRateLimiter.Source(SocketAddress(ipAddress: "127.0.0.3", port: 1))
        let six = try SourceRateLimiter.Source(SocketAddress(ipAddress: "::1", port: 1))
        #expect((0..<5).map { _ in limiter.take(from: one, now: now) } == [true, true, true, false, false])
        #expect(limiter.take(from: two, now: now), "another address is not held back")
        #expect(limiter.take(from: six, now: now))
        #expect(limiter.take(from: one, now: now + .seconds(1)), "the budget refills")
        for last in 10..<60 {
            _ = limiter.take(from: try .init(SocketAddress(ipAddress: "127.0.1.\(last)", port: 1)), now: now)
        }
        #expect(limiter.trackedSources <= 4)
    }
}
