import Foundation
import ImCore
import ImServer
import ImTesting
import Testing

/// `imserver_handshakes_refused_total{status,reason}`: refusals that share a status are told
/// apart by their cause, for both transports.
@Suite("Handshake refusals by cause")
struct RefusalCauseTests {
    @Test("missing, invalid, expired and replayed tokens, the user's limit and an unknown path are counted apart")
    func causes() async throws {
        try await TestCluster.with(configure: { configuration, _ in configuration.limits.connectionsPerUser = 2 }) {
            cluster in
            let stats = cluster.nodes[0].node.core.stats
            let base = cluster.nodes[0].url
            await Self.refused(base)
            await Self.refused(base + "?token=forged")
            let expired = try await cluster.helper.tokens.mint(
                for: "bob", lifetime: .seconds(1), now: Date().addingTimeInterval(-600))
            await Self.refused(base + "?token=" + expired)
            let url = try await cluster.url(for: "bob")
            let bob = try await TestClient.connect(to: url)
            await Self.refused(url)
            let bob2 = try await TestClient.connect(to: try await cluster.url(for: "bob"))
            await Self.refused(try await cluster.url(for: "bob"))
            await Self.refused(base.replacingOccurrences(of: "/ws", with: "/elsewhere") + "?token=x")
            _ = try? await EventStreamClient.connect(to: try await cluster.url(for: "bob"))

            #expect(stats.refusals(.tokenMissing) == 1)
            #expect(stats.refusals(.tokenInvalid) == 1)
            #expect(stats.refusals(.tokenExpired) == 1)
            #expect(stats.refusals(.tokenReplayed) == 1)
            #expect(stats.refusals(.userLimit) == 2, "one WebSocket, one event stream")
            #expect(stats.refusals(.unknownPath) == 1)
            #expect(stats.refusals(status: 429) == 2)
            #expect(stats.refusals(status: 401) == 3)
            await bob.close()
            await bob2.close()
        }
    }

    private static func refused(_ url: String) async {
        do {
            let client = try await TestClient.connect(to: url)
            Issue.record("\(url) was admitted")
            await client.close()
        } catch {}
    }
}
