import ImCore
import ImHelper
@testable import ImServer
import ImTesting
import Testing

/// What Presence says stays true when the node loses its registrations: a lease that ran out
/// (a paused node others reaped), a failed unregistration, a backend that lost its data. One
/// node on a controllable in-memory presence, its lease short (1 s, renewed every third of it;
/// a 300 ms lease ran out on its own when the whole suite loaded the machine).
@Suite("Truth under faults, in process")
struct TruthUnderFaultsTests {
    /// Runs `body` with the one-node cluster on its controllable presence; stops it whatever happens.
    private static func withCluster(_ body: (TestCluster, ControlledPresence) async throws -> Void) async throws {
        let presence = ControlledPresence()
        try await TestCluster.with(
            backplane: Backplane(bus: MemoryBus(), presence: presence),
            configure: { configuration, _ in configuration.leaseTTL = .seconds(1) }
        ) { cluster in
            try await body(cluster, presence)
        }
    }

    @Test("a node reaped while alive (paused past its lease) registers its connections again within one renewal")
    func reapedNodeRestores() async throws {
        try await Self.withCluster { cluster, presence in
            let events = try await EventRecorder.start(cluster.helper)
            let alice = try await cluster.connect("alice")
            #expect(try await events.next().kind == .online)
            // What another node's reaper does to a node whose lease ran out.
            _ = try await presence.inner.removeNode(cluster.nodes[0].node.nodeID)
            #expect(try await !cluster.helper.isOnline("alice"))

            try await waitUntil(timeout: .seconds(6)) { try await cluster.helper.isOnline("alice") }
            let announced = try await events.next()
            #expect(announced.kind == .online && announced.client == "alice", "alice is announced online again")
            let result = try await cluster.helper.send(.text("back"), from: "bob", to: ["alice"])
            #expect(result.offline.isEmpty)
            #expect(try await alice.next(type: "message")["id"]?.string == result.id)
            events.stop()
        }
    }

    @Test("a disconnect that failed leaves no ghost: the next renewal removes the entry and announces the user offline")
    func failedDisconnectIsReconciled() async throws {
        try await Self.withCluster { cluster, presence in
            let events = try await EventRecorder.start(cluster.helper)
            let bob = try await cluster.connect("bob")
            #expect(try await events.next().kind == .online)
            presence.failDisconnects(true)
            await bob.close()
            try await waitUntil { cluster.nodes[0].node.core.stats.openConnections == 0 }
            #expect(try await cluster.helper.isOnline("bob"), "the failed disconnect left bob listed")
            presence.failDisconnects(false)

            try await waitUntil(timeout: .seconds(6)) { try await !cluster.helper.isOnline("bob") }
            let announced = try await events.next()
            #expect(announced.kind == .offline && announced.client == "bob")
            events.stop()
        }
    }

    @Test(
        "after the backend lost its data: presence is whole again within one renewal, and memberships it lost stop working at once"
    )
    func dataLoss() async throws {
        try await Self.withCluster { cluster, presence in
            let alice = try await cluster.connect("alice")
            try await cluster.helper.join("alice", channels: ["room"])
            presence.loseData()
            #expect(try await !cluster.helper.isOnline("alice"))

            try await waitUntil(timeout: .seconds(6)) { try await cluster.helper.isOnline("alice") }
            // A command runs after the node's reload of alice's channels (one queue): once it is
            // confirmed, the node has dropped "room".
            try await cluster.helper.join("alice", channels: ["other"])
            #expect(try await cluster.helper.stats(of: "room") == ChannelStats(members: 0, online: 0))
            _ = try await cluster.helper.send(.text("to a lost room"), from: "bob", toChannel: "room")
            try await cluster.helper.broadcast(.text("marker"))
            #expect(
                try await alice.next(type: "message")["data"] == .string("marker"),
                "a membership the backend lost must not keep working on the connected user")
        }
    }

    @Test("a token used before the backend lost its claims is refused when replayed on the same node")
    func tokenReplayAfterDataLoss() async throws {
        try await Self.withCluster { cluster, presence in
            let url = try await cluster.url(for: "alice")
            let alice = try await TestClient.connect(to: url)
            #expect(try await alice.nextJSON()["type"]?.string == "ready")
            presence.loseData()
            do {
                let replay = try await TestClient.connect(to: url)
                await replay.close()
                Issue.record("a replayed token was admitted after the backend lost its claims")
            } catch TestClientError.refused(let status, _) {
                #expect(status == 401)
            }
        }
    }

    @Test("a connection that opens while its node reconciles is listed online once it is ready")
    func connectionOpenedDuringReconciliation() async throws {
        try await Self.withCluster { cluster, presence in
            do {
                try await Self.openDuringReconciliation(cluster, presence)
            } catch {
                presence.holdReplacements(false)
                throw error
            }
        }
    }

    private static func openDuringReconciliation(_ cluster: TestCluster, _ presence: ControlledPresence) async throws {
        let core = cluster.nodes[0].node.core
        // An outage ends: the node's watcher reconciles at once, and the test holds that
        // reconciliation's replacement after its snapshot was taken.
        presence.goDown("test outage")
        let reads = presence.healthReads
        try await waitUntil { presence.healthReads > reads }
        presence.holdReplacements(true)
        presence.comeBack()
        try await waitUntil(timeout: .seconds(5)) { presence.replacementsWaiting == 1 }

        let connecting = Task { try await cluster.connect("late") }
        // Its registration has reached Presence, or waits for the reconciliation to finish.
        try await waitUntil(timeout: .seconds(5)) {
            presence.connectCalls > 0 || core.registrar.gate.waitingWrites > 0
        }
        presence.releaseOneReplacement()
        try await waitUntil(timeout: .seconds(5)) { presence.replacementsFinished == 1 }
        let late = try await connecting.value
        // Any further replacement is still held: what Presence says now is what a sender sees.
        #expect(
            try await presence.inner.nodes(of: ["late"])["late"] == [core.configuration.nodeID],
            "late is ready, so it is listed online")
        presence.holdReplacements(false)
        let sent = try await cluster.helper.send(.text("hello"), from: "x", to: ["late"])
        #expect(sent.offline.isEmpty)
        #expect(try await late.next(type: "message")["id"]?.string == sent.id)
    }
}
