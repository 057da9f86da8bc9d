import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import ImCore
import ImHelper
import ImRedis
import ImTesting
import Logging
import NIOPosix
import Testing

/// Three real `imserver` processes on one real redis-server, plus an in-process ImHelper.
@Suite(
    "Cluster of imserver processes on Redis",
    .enabled(if: findExecutable("redis-server") != nil || isContinuousIntegration),
    .serialized)
struct RedisClusterTests {
    static let secret = "integration-secret-0123456789abcdef0123"

    final class Cluster: Sendable {
        let redis: LocalServer
        let nodes: [LocalServer]
        let apiPorts: [Int]
        let helper: ImHelper
        let backplaneRunner: ServiceRunner

        init(
            redis: LocalServer, nodes: [LocalServer], apiPorts: [Int], helper: ImHelper, backplaneRunner: ServiceRunner
        ) {
            self.redis = redis
            self.nodes = nodes
            self.apiPorts = apiPorts
            self.helper = helper
            self.backplaneRunner = backplaneRunner
        }

        func url(for user: ClientID, node: Int) async throws -> String {
            "ws://127.0.0.1:\(nodes[node].port)/ws?token=" + (try await helper.tokens.mint(for: user))
        }

        func connect(_ user: ClientID, node: Int) async throws -> TestClient {
            let client = try await TestClient.connect(to: try await url(for: user, node: node))
            let ready = try await client.nextJSON(timeout: .seconds(10))
            guard ready["type"]?.string == "ready" else { throw TestClientError.unexpected(.text(ready.description)) }
            return client
        }

        func health(node: Int) async -> Int {
            guard let url = URL(string: "http://127.0.0.1:\(nodes[node].port)/health"),
                let (_, response) = try? await URLSession.shared.data(from: url)
            else { return 0 }
            return (response as? HTTPURLResponse)?.statusCode ?? 0
        }

        func metrics(node: Int) async -> String {
            guard let url = URL(string: "http://127.0.0.1:\(apiPorts[node])/metrics"),
                let (data, _) = try? await URLSession.shared.data(from: url)
            else { return "" }
            return String(decoding: data, as: UTF8.self)
        }

        func stop() async {
            for node in nodes where node.isRunning { _ = try? await node.stop() }
            await helper.close()
            try? await backplaneRunner.stop()
            _ = try? await redis.stop()
        }
    }

    private func startCluster(leaseTTL: Double = 2) async throws -> Cluster {
        let redis = try await LocalServer.redis()
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("imserver")
        var nodes: [LocalServer] = []
        var apiPorts: [Int] = []
        for index in 1...3 {
            let port = try await freePort()
            let apiPort = try await freePort()
            apiPorts.append(apiPort)
            nodes.append(
                try await LocalServer.start(
                    binary,
                    arguments: [
                        "--listen", "127.0.0.1:\(port)", "--api-listen", "127.0.0.1:\(apiPort)", "--node-id",
                        "node-\(index)",
                        "--backplane-url", "redis://127.0.0.1:\(redis.port)/0?prefix=it&timeout=1",
                    ],
                    environment: [
                        "IM_TOKEN_SECRET": Self.secret, "IM_LEASE_TTL": String(leaseTTL), "IM_LOG_LEVEL": "warning",
                    ],
                    port: port))
        }
        let configuration = RedisConfiguration(port: redis.port, keyPrefix: "it", commandTimeout: .seconds(1))
        let backplane = Backplane.redis(configuration, logger: Logger(label: "it-helper"))
        let runner = ServiceRunner(service: backplane, logger: Logger(label: "it-helper"))
        let helper = ImHelper(backplane: backplane, tokens: try await ConnectTokens(secret: Self.secret))
        try await waitUntil(timeout: .seconds(10)) { backplane.health.isUp }
        let cluster = Cluster(redis: redis, nodes: nodes, apiPorts: apiPorts, helper: helper, backplaneRunner: runner)
        // A node admits connections once linked to the backplane (its /health says 200).
        for node in nodes.indices {
            try await waitUntil(timeout: .seconds(10)) { await cluster.health(node: node) == 200 }
        }
        return cluster
    }

    @Test("P2P, channels and per-user events across three nodes")
    func deliveryAcrossNodes() async throws {
        let cluster = try await startCluster()
        let events = try await EventRecorder.start(cluster.helper)
        let alice1 = try await cluster.connect("alice", node: 0)
        let alice2 = try await cluster.connect("alice", node: 1)
        let bob = try await cluster.connect("bob", node: 1)
        let carol = try await cluster.connect("carol", node: 2)

        var online: [String] = []
        for _ in 0..<3 { online.append(try await events.next(timeout: .seconds(10)).client.rawValue) }
        #expect(online.sorted() == ["alice", "bob", "carol"], "alice is announced once although on two nodes")

        let sent = try await cluster.helper.send(.text("to alice"), from: "carol", to: ["alice"], receipt: true)
        for tab in [alice1, alice2] { #expect(try await tab.next(type: "message")["id"]?.string == sent.id) }
        let receipt = try await carol.next(type: "receipt")
        #expect(receipt["status"]?.string == "delivered")
        try await cluster.helper.send(.text("to bob"), from: "alice", to: ["bob"])
        #expect(try await bob.next(type: "message")["data"] == .string("to bob"))

        for user: ClientID in ["alice", "bob", "carol"] { try await cluster.helper.join(user, channels: ["room"]) }
        let id = try await cluster.helper.send(.text("hello room"), from: "bob", toChannel: "room")
        for client in [alice1, alice2, bob, carol] {
            #expect(try await client.next(type: "message")["id"]?.string == id)
        }
        #expect(try await cluster.helper.stats(of: "room") == ChannelStats(members: 3, online: 3))

        await alice1.close()
        await alice2.close()
        let offline = try await events.next(timeout: .seconds(10))
        #expect(offline.kind == .offline && offline.client == "alice")
        try await cluster.helper.send(.text("marker"), from: "x", to: ["bob"])
        #expect(try await bob.next(type: "message")["data"] == .string("marker"))
        events.stop()
        await cluster.stop()
    }

    @Test("a node killed with SIGKILL: its users are reported offline within the lease; others unaffected")
    func nodeKilled() async throws {
        let cluster = try await startCluster(leaseTTL: 2)
        let carol = try await cluster.connect("carol", node: 2)
        let bob = try await cluster.connect("bob", node: 1)
        let events = try await EventRecorder.start(cluster.helper)
        _ = carol
        try await cluster.nodes[2].kill()
        let offline = try await events.next(timeout: .seconds(10))
        #expect(offline.kind == .offline && offline.client == "carol" && offline.node == "node-3")
        #expect(try await !cluster.helper.isOnline("carol"))
        #expect(try await cluster.helper.isOnline("bob"))
        try await cluster.helper.send(.text("still here"), from: "x", to: ["bob"])
        #expect(try await bob.next(type: "message")["data"] == .string("still here"))
        events.stop()
        await cluster.stop()
    }

    @Test("redis-server restarted: health goes down and up, presence is whole again, delivery resumes")
    func redisRestarted() async throws {
        let cluster = try await startCluster()
        let alice = try await cluster.connect("alice", node: 0)
        let bob = try await cluster.connect("bob", node: 1)
        #expect(await cluster.health(node: 0) == 200)

        try await cluster.redis.kill()
        try await waitUntil(timeout: .seconds(10)) { await cluster.health(node: 0) == 503 }
        try await waitUntil(timeout: .seconds(10)) {
            await cluster.metrics(node: 0).contains("imserver_backplane_up 0.0")
        }
        #expect(alice.isActive && bob.isActive, "clients stay connected while Redis is away")

        try await cluster.redis.restart()
        try await waitUntil(timeout: .seconds(20)) {
            var healthy = true
            for node in 0..<3 where await cluster.health(node: node) != 200 { healthy = false }
            return healthy
        }
        try await waitUntil(timeout: .seconds(20)) { try await cluster.helper.onlineUsers() == ["alice", "bob"] }
        #expect(await cluster.metrics(node: 0).contains("imserver_backplane_up 1.0"))
        try await waitUntil(timeout: .seconds(20)) { cluster.helper.backplane.health.isUp }
        try await cluster.helper.send(.text("after restart"), from: "x", to: ["alice", "bob"])
        #expect(try await alice.next(type: "message", timeout: .seconds(10))["data"] == .string("after restart"))
        #expect(try await bob.next(type: "message", timeout: .seconds(10))["data"] == .string("after restart"))
        await cluster.stop()
    }
}
