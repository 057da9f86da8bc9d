public import ImCore
import Synchronization

/// A ``NodeRouter`` over any bus and presence that looks up, then publishes (what a sender
/// without a router does, in the router's shape), and records each call's messages: lets
/// tests on the memory backplane take the routed send path and see which sends took it.
public final class LookupRouter: NodeRouter {
    private let bus: any Bus
    private let presence: any Presence
    private let calls = Mutex<[[RoutedMessage]]>([])

    /// A router publishing on `bus` to the nodes `presence` names.
    public init(bus: any Bus, presence: any Presence) {
        self.bus = bus
        self.presence = presence
    }

    /// A memory backplane with a router of this kind.
    public static func memoryBackplane() -> (backplane: Backplane, router: LookupRouter) {
        let bus = MemoryBus()
        let presence = MemoryPresence()
        let router = LookupRouter(bus: bus, presence: presence)
        return (Backplane(bus: bus, presence: presence, router: router), router)
    }

    /// The messages of each call so far, in order.
    public var recordedCalls: [[RoutedMessage]] { calls.withLock { $0 } }

    public func publish(_ messages: [RoutedMessage], toNodesUnder nodeSubjectPrefix: String) async throws
        -> [ClientID: Set<NodeID>]
    {
        calls.withLock { $0.append(messages) }
        let located = try await presence.nodes(of: messages.flatMap(\.users))
        var batch: [BusMessage] = []
        for message in messages {
            let nodes = Set(message.users.flatMap { located[$0] ?? [] })
            for node in nodes.sorted() {
                batch.append(BusMessage(subject: nodeSubjectPrefix + node.rawValue, payload: message.payload))
            }
        }
        try await bus.publish(batch)
        return located
    }
}
