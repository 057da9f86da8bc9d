import ImCore
import ImHelper
import ImTesting
import Testing

/// A lone send to users without a receipt goes through the backplane's ``NodeRouter`` (one
/// round trip); the rest look up, then publish.
@Suite("Send routing")
struct SendRoutingTests {
    @Test("a lone send without a receipt goes through the router: one call, delivered, offline users reported")
    func loneSendIsRouted() async throws {
        let (backplane, router) = LookupRouter.memoryBackplane()
        try await TestCluster.with(backplane: backplane) { cluster in
            let bob = try await cluster.session("bob")
            let before = router.recordedCalls.count
            let result = try await cluster.helper.send(try JSONPayload(json: "1"), from: "alice", to: ["bob", "carol"])
            #expect(result.offline == ["carol"])
            #expect(router.recordedCalls.dropFirst(before).map { $0.map(\.users) } == [[["bob", "carol"]]])
            #expect(try await bob.nextMessage().id == result.id)
        }
    }

    @Test("a send with a receipt, a batch of two and a message to 66 users look up first; all arrive in order")
    func whatIsNotRouted() async throws {
        let (backplane, router) = LookupRouter.memoryBackplane()
        try await TestCluster.with(backplane: backplane) { cluster in
            let bob = try await cluster.session("bob")
            let helper = cluster.helper
            let before = router.recordedCalls.count
            let receipted = try await helper.send(try JSONPayload(json: "0"), from: "alice", to: ["bob"], receipt: true)
            let two = try await helper.send(
                (1...2).map { OutgoingMessage(try JSONPayload(json: String($0)), from: "alice", to: ["bob", "ghost"]) })
            let crowd = (1...65).map { ClientID(rawValue: "ghost-\($0)") } + ["bob"]
            let toMany = try await helper.send(try JSONPayload(json: "3"), from: "alice", to: crowd)
            #expect(toMany.offline.count == 65)
            #expect(router.recordedCalls.count == before)
            #expect(two.map(\.offline) == [["ghost"], ["ghost"]])
            let lone = try await helper.send(try JSONPayload(json: "4"), from: "alice", to: ["bob"])
            #expect(router.recordedCalls.count == before + 1)
            var ids: [String] = []
            for _ in 0...4 { ids.append(try await bob.nextMessage().id) }
            #expect(ids == [receipted.id] + two.map(\.id) + [toMany.id, lone.id])
        }
    }

    @Test("when the router fails, every send of its batch fails with the router's error")
    func routerFailure() async throws {
        let bus = MemoryBus()
        let presence = MemoryPresence()
        let backplane = Backplane(bus: bus, presence: presence, router: FailingRouter())
        try await TestCluster.with(backplane: backplane) { cluster in
            _ = try await cluster.session("bob")
            let error = await #expect(throws: BackplaneError.self) {
                try await cluster.helper.send(try JSONPayload(json: "1"), from: "alice", to: ["bob"])
            }
            #expect(error.map { "\($0)" }?.contains("router down") == true, "\(String(describing: error))")
            // A channel message does not take the router.
            try await cluster.helper.send(try JSONPayload(json: "2"), from: "alice", toChannel: "room")
        }
    }
}

/// A router whose backend is away.
private struct FailingRouter: NodeRouter {
    func publish(_ messages: [RoutedMessage], toNodesUnder nodeSubjectPrefix: String) async throws
        -> [ClientID: Set<NodeID>]
    {
        throw BackplaneError.unavailable("router down")
    }
}
