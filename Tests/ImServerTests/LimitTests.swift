import ImCore
import ImServer
import ImTesting
import Testing

@Suite("Connection limits")
struct LimitTests {
    @Test("connections per user beyond the limit are refused with 429")
    func perUserLimit() async throws {
        try await TestCluster.with(configure: { configuration, _ in configuration.limits.connectionsPerUser = 2 }) {
            cluster in
            _ = try await cluster.connect("alice")
            _ = try await cluster.connect("alice")
            await #expect(
                throws: TestClientError.refused(status: 429, reason: "user has 2 connections on this node already")
            ) {
                _ = try await TestClient.connect(to: try await cluster.url(for: "alice"))
            }
            _ = try await cluster.connect("bob")
        }
    }

    @Test("connections per node beyond the limit are refused with 503")
    func perNodeLimit() async throws {
        try await TestCluster.with(configure: { configuration, _ in configuration.limits.connectionsPerNode = 2 }) {
            cluster in
            let first = try await cluster.connect("a")
            _ = try await cluster.connect("b")
            await #expect(throws: TestClientError.refused(status: 503, reason: "node is full (2 connections)")) {
                _ = try await TestClient.connect(to: try await cluster.url(for: "c"))
            }
            await first.close()
            try await waitUntil { cluster.nodes[0].node.core.stats.openConnections < 2 }
            _ = try await cluster.connect("c")
        }
    }
}
