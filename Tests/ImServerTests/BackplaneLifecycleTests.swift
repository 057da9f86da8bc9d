import ImCore
import ImHelper
import ImServer
import ImTesting
import Logging
import ServiceLifecycle
import Testing

/// The backplane is run as one service with one health, stopped after the node.
@Suite("Backplane lifecycle")
struct BackplaneLifecycleTests {
    @Test(
        "the whole service group stops gracefully with the backplane last: the node's removeNode and offline announcement reach it"
    )
    func groupStopsBackplaneLast() async throws {
        let presence = ControlledPresence()
        let backplane = Backplane(bus: MemoryBus(), presence: presence)
        var logger = Logger(label: "group-order")
        logger.logLevel = .warning
        let tokens = try await ConnectTokens(secret: "group-order-secret-0123456789abcdef")
        let node = ImNode(
            configuration: NodeConfiguration(nodeID: "order-node", port: 0), backplane: backplane,
            tokens: tokens, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: NodeServices.ordered(backplane: backplane, node: node).map { .init(service: $0) },
                gracefulShutdownSignals: [], logger: logger))
        let running = Task { try await group.run() }
        let port = try #require(await node.transport.waitUntilBound())
        try await waitUntil { node.isLinked }

        let events = try await backplane.bus.makeSubscriber()
        try await events.subscribe([Subjects().events])
        let token = try await tokens.mint(for: "alice")
        let alice = try await TestClient.connect(to: "ws://127.0.0.1:\(port)/ws?token=\(token)")
        #expect(try await alice.nextJSON()["type"]?.string == "ready")
        try await waitUntil { try await presence.inner.onlineUsers(after: nil, limit: 10) == ["alice"] }

        await group.triggerGracefulShutdown()
        try await running.value

        // The bus finishes every subscriber's stream when it stops: what arrived before is all.
        var announced: [String] = []
        for await message in events.messages {
            if case .event(let event)? = try? Envelope(decoding: message.payload) {
                announced.append("\(event.kind.name) \(event.client)")
            }
        }
        #expect(
            announced == ["online alice", "offline alice"],
            "the offline announcement must reach the bus before the backplane stops")
        #expect(
            try await presence.inner.onlineUsers(after: nil, limit: 10).isEmpty,
            "the node must remove its connections from Presence before the backplane stops")
    }

    @Test(
        "an outage of the presence alone: health 503 meanwhile, and the node re-registers its connections once it is back"
    )
    func presenceOutageReregisters() async throws {
        let presence = ControlledPresence()
        try await TestCluster.with(backplane: Backplane(bus: MemoryBus(), presence: presence)) { cluster in
            let core = cluster.nodes[0].node.core
            let alice = try await cluster.connect("alice")
            try await waitUntil { try await presence.inner.onlineUsers(after: nil, limit: 10) == ["alice"] }

            presence.goDown("test outage")
            #expect(cluster.backplane.health == .down("presence: test outage"))
            #expect(core.healthResponse().status == .serviceUnavailable)
            // Only the node's backplane watcher reads the health from here on: once it has, it saw the outage.
            let reads = presence.healthReads
            try await waitUntil { presence.healthReads > reads }
            // The directory lost its data meanwhile (a restart without persistence).
            _ = try await presence.inner.removeNode(core.configuration.nodeID)
            presence.comeBack()

            try await waitUntil(timeout: .seconds(10)) {
                try await presence.inner.onlineUsers(after: nil, limit: 10) == ["alice"]
            }
            #expect(core.healthResponse().status == .ok)
            #expect(alice.isActive)
            await alice.close()
        }
        // The backplane ran the presence's run() and, on stopping, ended it.
        await #expect(throws: BackplaneError.self) { try await presence.nodes(of: ["alice"]) }
    }
}
