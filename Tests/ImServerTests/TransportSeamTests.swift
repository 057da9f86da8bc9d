import ImCore
import ImHelper
import ImServer
import ImTesting
import Testing

/// The `Transport` seam, through a transport outside the node's module (``InMemoryTransport``
/// in ImTesting, which sees only the node's public API): admission, `ready`, messages,
/// receipts and acks, the node's closes and limits, the client's close.
@Suite("The Transport seam")
struct TransportSeamTests {
    /// Runs `body` with a one-node cluster whose node also has an ``InMemoryTransport``; stops it whatever happens.
    private static func withCluster(
        configure: (inout NodeConfiguration) -> Void = { _ in },
        _ body: (TestCluster, InMemoryTransport) async throws -> Void
    ) async throws {
        try await TestCluster.with(
            configure: { configuration, _ in configure(&configuration) },
            transports: { [InMemoryTransport(core: $0)] }
        ) { cluster in
            try await body(cluster, try #require(cluster.nodes[0].inMemory))
        }
    }

    private static func connect(_ user: ClientID, to transport: InMemoryTransport, in cluster: TestCluster)
        async throws -> InMemoryClient
    {
        let client = try await transport.connect(token: try await cluster.helper.tokens.mint(for: user))
        let ready = try await client.nextFrame()
        #expect(ready["type"]?.string == "ready")
        #expect(ready["client"]?.string == user.rawValue)
        return client
    }

    @Test(
        "a client on another transport gets ready, messages and receipts like a WebSocket client; its ack reaches the sender"
    )
    func messagesReceiptsAndAcks() async throws {
        try await Self.withCluster { cluster, transport in
            let alice = try await cluster.connect("alice")
            let bob = try await Self.connect("bob", to: transport, in: cluster)
            let bobOverWebSocket = try await cluster.connect("bob")

            let result = try await cluster.helper.send(.text("hi bob"), from: "alice", to: ["bob"], receipt: true)
            #expect(result.offline.isEmpty)
            let message = try await bob.nextFrame()
            #expect(message["type"]?.string == "message")
            #expect(message["id"]?.string == result.id)
            #expect(message["data"] == .string("hi bob"))
            #expect(message["receipt"] == .bool(true))
            let overWebSocket = try await bobOverWebSocket.next(type: "message")
            #expect(overWebSocket["id"]?.string == result.id)
            #expect(try await alice.next(type: "receipt")["status"]?.string == "delivered")

            try await bob.send(text: #"{"type":"ack","id":"\#(result.id)"}"#)
            let acked = try await alice.next(type: "receipt")
            #expect(acked["status"]?.string == "acked")
            #expect(acked["to"]?.string == "bob")

            try await bob.send(text: #"{"type":"ping"}"#)
            #expect(try await bob.nextFrame()["type"]?.string == "pong")
        }
    }

    @Test("the gatekeeper refuses a forged token and a replayed one with the statuses a WebSocket client gets")
    func admission() async throws {
        try await Self.withCluster { cluster, transport in
            let forged = await #expect(throws: HandshakeRefusal.self) { try await transport.connect(token: "forged") }
            #expect(forged?.status == .unauthorized)
            let token = try await cluster.helper.tokens.mint(for: "bob")
            _ = try await transport.connect(token: token)
            do {
                _ = try await transport.connect(token: token)
                Issue.record("a replayed token was admitted")
            } catch let refusal as HandshakeRefusal {
                #expect(refusal.status == .unauthorized)
                #expect(refusal.reason.contains("used"))
            }
        }
    }

    @Test("force offline closes the client with 4003 and Presence forgets it; its places are given back")
    func forceOffline() async throws {
        try await Self.withCluster(configure: { $0.limits.connectionsPerUser = 1 }) { cluster, transport in
            let bob = try await Self.connect("bob", to: transport, in: cluster)
            #expect(try await cluster.helper.isOnline("bob"))

            try await cluster.helper.forceOffline("bob")
            #expect(try await bob.next() == .closed(.forcedOffline, "forced offline"))
            try await waitUntil { try await !cluster.helper.isOnline("bob") }
            // The one place bob may hold is free again.
            let again = try await Self.connect("bob", to: transport, in: cluster)
            try await again.close()
            try await waitUntil { try await !cluster.helper.isOnline("bob") }
            #expect(cluster.nodes[0].node.core.stats.openConnections == 0)
        }
    }

    @Test("a client that takes no writes keeps its frames back, then is closed as a slow consumer (4008)")
    func slowConsumer() async throws {
        try await Self.withCluster(configure: { $0.limits.maxQueuedBytes = 4096 }) { cluster, transport in
            let bob = try await Self.connect("bob", to: transport, in: cluster)
            try await bob.setWritable(false)
            for index in 0..<100 {
                try await cluster.helper.send(.text("message \(index)"), from: "alice", to: ["bob"])
            }
            var messages = 0
            while true {
                let event = try await bob.next()
                if case .frame = event { messages += 1 }
                if case .closed(let code, _) = event {
                    #expect(code == .slowConsumer)
                    break
                }
            }
            #expect(messages == 0, "nothing was written to a client that takes no writes")
        }
    }

    @Test("a client that answers no keepalive is closed for idleness (4009)")
    func idleTimeout() async throws {
        try await Self.withCluster(configure: {
            $0.pingInterval = .milliseconds(50)
            $0.idleTimeout = .milliseconds(300)
        }) { cluster, transport in
            let bob = try await Self.connect("bob", to: transport, in: cluster)
            bob.answerKeepalives(false)
            var keepalives = 0
            while true {
                let event = try await bob.next()
                if event == .keepalive { keepalives += 1 }
                if case .closed(let code, _) = event {
                    #expect(code == .idleTimeout)
                    break
                }
            }
            #expect(keepalives >= 1)
        }
    }

    @Test("a message to a user whose only connection is closing is reported offline, not delivered")
    func noDeliveredReceiptWhileClosing() async throws {
        try await Self.withCluster { cluster, transport in
            let alice = try await cluster.connect("alice")
            let bob = try await Self.connect("bob", to: transport, in: cluster)
            bob.answerCloses(false)
            try await cluster.helper.forceOffline("bob")
            #expect(try await bob.next() == .closed(.forcedOffline, "forced offline"))
            // bob's connection stays (closing) for the close's grace of 2 s: the message is not
            // written to it, and the receipt says so.
            let result = try await cluster.helper.send(.text("too late"), from: "alice", to: ["bob"], receipt: true)
            #expect(result.offline.isEmpty, "Presence still lists bob while his connection closes")
            let receipt = try await alice.next(type: "receipt")
            #expect(receipt["to"]?.string == "bob")
            #expect(receipt["status"]?.string == "offline")
        }
    }

    @Test("stopping the node closes the transport's clients with 1001 and refuses new ones")
    func shutdown() async throws {
        try await Self.withCluster { cluster, transport in
            let bob = try await Self.connect("bob", to: transport, in: cluster)
            let token = try await cluster.helper.tokens.mint(for: "carol")
            try await cluster.stop()
            #expect(try await bob.next() == .closed(.goingAway, "server shutting down"))
            await #expect(throws: HandshakeRefusal.self) { try await transport.connect(token: token) }
        }
    }
}
