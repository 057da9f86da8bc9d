import ImCore
import ImTesting
import Testing
@testable import ImServer

/// A connection's registration bookkeeping: registered connections keep a small value (not
/// their finished task), and closing removes every trace.
@Suite("Connection lifecycles")
struct LifecycleTests {
    @Test("50 connections are registered once ready, and nothing is left once they all closed")
    func registeredThenGone() async throws {
        try await TestCluster.with { cluster in
            let core = cluster.nodes[0].node.core
            var clients: [TestClient] = []
            for index in 0..<50 { clients.append(try await cluster.connect(ClientID(rawValue: "user-\(index % 10)"))) }
            // Every client got `ready`, so every registration finished.
            let open = core.registrar.counts
            #expect(open.registering == 0 && open.registered == 50 && open.unregistering == 0)

            for client in clients { await client.close() }
            try await waitUntil { core.stats.openConnections == 0 }
            // Unregistrations run in the background; each removes its entry when done.
            try await waitUntil {
                let closed = core.registrar.counts
                return closed.registering == 0 && closed.registered == 0 && closed.unregistering == 0
            }
            #expect(try await cluster.helper.onlineUsers().isEmpty)
        }
    }
}
