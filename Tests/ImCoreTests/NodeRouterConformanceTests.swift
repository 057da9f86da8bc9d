import ImCore
import ImTesting
import NIOCore
import Testing

/// The router checks pass a router that looks up then publishes, fail routers that publish to
/// too few or too many nodes, and do not apply to a backplane without a router.
@Suite("Node router conformance")
struct NodeRouterConformanceTests {
    @Test("a router that looks up, then publishes, keeps the contract", arguments: NodeRouterConformance.Check.allCases)
    func lookupRouterPasses(_ check: NodeRouterConformance.Check) async throws {
        let outcome = try await NodeRouterConformance(makeBackplane: { LookupRouter.memoryBackplane().backplane })
            .run(check)
        #expect(outcome == .passed)
    }

    @Test("a backplane without a router: not applicable, and the check says why")
    func withoutRouter() async throws {
        let outcome = try await NodeRouterConformance(makeBackplane: { .memory() }).run(.publishesToEachHoldingNodeOnce)
        guard case .notApplicable(let reason) = outcome else {
            Issue.record("expected not applicable, got \(outcome)")
            return
        }
        #expect(reason.contains("no router"))
    }

    @Test(
        "a router that misses a node, or reaches one too many, fails the check",
        arguments: [MisroutingRouter.Fault.firstNodeOnly, .everyNodeOnce, .everyUserNode])
    func misroutingFails(_ fault: MisroutingRouter.Fault) async throws {
        let failure = await #expect(throws: ConformanceFailure.self) {
            try await NodeRouterConformance(timeout: .seconds(1)) {
                let bus = MemoryBus()
                let presence = MemoryPresence()
                return Backplane(
                    bus: bus, presence: presence, router: MisroutingRouter(fault, bus: bus, presence: presence))
            }.run(.publishesToEachHoldingNodeOnce)
        }
        #expect(failure?.check == NodeRouterConformance.Check.publishesToEachHoldingNodeOnce.rawValue)
    }
}

/// A router that gets one thing wrong.
struct MisroutingRouter: NodeRouter {
    enum Fault: Sendable, CustomTestStringConvertible {
        /// Publishes each message to the first node of its users only.
        case firstNodeOnly
        /// Publishes each message to every node of every user named in the call.
        case everyNodeOnce
        /// Publishes a message once per user per node (twice to a node holding two of its users).
        case everyUserNode

        var testDescription: String {
            switch self {
            case .firstNodeOnly: "first node only"
            case .everyNodeOnce: "every node of the call"
            case .everyUserNode: "once per user per node"
            }
        }
    }

    let fault: Fault
    let bus: any Bus
    let presence: any Presence

    init(_ fault: Fault, bus: any Bus, presence: any Presence) {
        self.fault = fault
        self.bus = bus
        self.presence = presence
    }

    func publish(_ messages: [RoutedMessage], toNodesUnder nodeSubjectPrefix: String) async throws
        -> [ClientID: Set<NodeID>]
    {
        let located = try await presence.nodes(of: messages.flatMap(\.users))
        let everyNode = Set(located.values.flatMap { $0 }).sorted()
        for message in messages {
            let nodes: [NodeID]
            switch fault {
            case .firstNodeOnly:
                nodes = Array(Set(message.users.flatMap { located[$0] ?? [] }).sorted().prefix(1))
            case .everyNodeOnce:
                nodes = everyNode
            case .everyUserNode:
                nodes = message.users.flatMap { (located[$0] ?? []).sorted() }
            }
            try await bus.publish(
                nodes.map { BusMessage(subject: nodeSubjectPrefix + $0.rawValue, payload: message.payload) })
        }
        return located
    }
}
