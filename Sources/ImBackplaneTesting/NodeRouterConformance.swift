public import ImBackplane
import NIOCore

/// Checks that a backplane's ``NodeRouter`` keeps its contract: it publishes where a lookup
/// (`nodes(of:)`) then a publish would, in order, and answers what the lookup would.
///
/// Each check makes a fresh backplane with `makeBackplane`, runs it for the duration of the
/// check, and uses ids and subjects under a random prefix, so checks can share a real server.
/// A backplane without a router is not applicable (the check records why).
///
/// ```swift
/// @Test(arguments: NodeRouterConformance.Check.allCases)
/// func router(_ check: NodeRouterConformance.Check) async throws {
///     try await NodeRouterConformance(makeBackplane: { try await .myBackplane(url) }).run(check)
/// }
/// ```
public struct NodeRouterConformance: Sendable {
    /// One contract clause.
    public enum Check: String, CaseIterable, Sendable {
        /// Messages to a user on one node, a user on two nodes (three connections), both and an
        /// offline user, and the offline user alone: each node holding any of a message's users
        /// gets it once, in the order published, and no other node does; the answer is what
        /// `nodes(of:)` says (the offline user absent).
        case publishesToEachHoldingNodeOnce
        /// Routing follows connections: after a user disconnects from one node and connects on
        /// another, the next message goes to the new node only.
        case followsConnectionChanges
    }

    /// Makes the backplane under test; called once per check.
    public let makeBackplane: @Sendable () async throws -> Backplane
    /// How long to wait for one expected message, and for the backplane to be up.
    public let timeout: Duration

    /// Checks backplanes made by `makeBackplane`, waiting up to `timeout` for each message.
    public init(timeout: Duration = .seconds(10), makeBackplane: @escaping @Sendable () async throws -> Backplane) {
        self.timeout = timeout
        self.makeBackplane = makeBackplane
    }

    /// Runs one check on a fresh backplane; throws ``ConformanceFailure`` describing what broke,
    /// or returns whether it passed or did not apply (and why).
    @discardableResult
    public func run(_ check: Check) async throws -> ConformanceOutcome {
        let backplane: Backplane
        do {
            backplane = try await makeBackplane()
        } catch {
            throw ConformanceFailure(check: check.rawValue, message: "makeBackplane threw \(error)")
        }
        guard let router = backplane.router else {
            return .notApplicable("the backplane has no router: senders look up, then publish")
        }
        let presence = PresenceHarness(
            presence: backplane.presence, check: check.rawValue, timeout: timeout, reconnectTimeout: timeout,
            restartBackend: nil)
        let bus = BusHarness(
            bus: backplane.bus, check: check.rawValue, timeout: timeout, reconnectTimeout: timeout,
            restartBackend: nil)
        let harness = RouterHarness(router: router, presence: presence, bus: bus)
        try await whileRunning(
            backplane, harness: harness,
            body: {
                try await waitUntilUp({ backplane.health }, "the backplane's", timeout: timeout, harness: harness)
                switch check {
                case .publishesToEachHoldingNodeOnce: try await harness.publishesToEachHoldingNodeOnce()
                case .followsConnectionChanges: try await harness.followsConnectionChanges()
                }
            },
            tearDown: {
                await bus.tearDown()
                await presence.cleanUp()
            })
        return .passed
    }
}

/// What one router check works with: the router, and the presence and bus harnesses of its backplane.
struct RouterHarness: ConformanceHarness {
    let router: any NodeRouter
    let presence: PresenceHarness
    let bus: BusHarness

    func failure(_ message: String) -> ConformanceFailure {
        presence.failure(bus.failure(message).message)
    }

    /// The node subject prefix of this check (its bus prefix).
    private var nodePrefix: String { bus.subject("node.") }

    /// Publishes texts to the nodes of their users through the router; returns its answer.
    private func route(_ messages: [(text: String, users: [ClientID])]) async throws -> [ClientID: Set<NodeID>] {
        let routed = messages.map { RoutedMessage(users: $0.users, payload: ByteBuffer(string: $0.text)) }
        return try await attempt("publish(\(messages.count) messages, toNodesUnder: \(nodePrefix))") {
            try await router.publish(routed, toNodesUnder: nodePrefix)
        }
    }

    /// Requires `inbox` (subscribed to `node`'s subject) to get exactly `texts`, in order, then
    /// the end marker published after them: nothing more, nothing less.
    private func expect(_ texts: [String], on node: NodeID, in inbox: Inbox, _ why: String) async throws {
        let subject = nodePrefix + node.rawValue
        for text in texts { try await inbox.expect(text, on: subject, why) }
        try await inbox.expect("end", on: subject, "only \(texts) were routed to \(node) (\(why))")
    }

    /// An inbox subscribed to each node's subject, named after the node (without the prefix).
    private func inboxes(_ nodes: [NodeID]) async throws -> [Inbox] {
        var made: [Inbox] = []
        for node in nodes {
            let name = "node " + node.rawValue.replacing(presence.prefix + "-", with: "")
            made.append(try await bus.inbox(name, to: [nodePrefix + node.rawValue]))
        }
        return made
    }

    /// Publishes the end marker to each node's subject, on the bus.
    private func end(_ nodes: [NodeID]) async throws {
        try await bus.publish(batch: nodes.map { ("end", nodePrefix + $0.rawValue) })
    }

    func publishesToEachHoldingNodeOnce() async throws {
        let one = try await presence.node("one")
        let two = try await presence.node("two")
        let idle = try await presence.node("idle")
        let (alice, bob, carol) = (presence.user("alice"), presence.user("bob"), presence.user("carol"))
        for (user, node, tag) in [(alice, one, "a1"), (bob, one, "b1"), (bob, two, "b2"), (bob, two, "b3")] {
            _ = try await presence.connect(presence.record(user, on: node, tag))
        }
        let inboxes = try await inboxes([one, two, idle])
        let answer = try await route([
            ("to alice", [alice]), ("to bob", [bob]), ("to all three", [alice, bob, carol]), ("to carol", [carol]),
        ])
        let looked = try await presence.nodes(of: [alice, bob, carol])
        guard answer == looked else {
            throw failure("the router answered \(answer), but nodes(of:) says \(looked)")
        }
        guard answer[carol] == nil, answer[alice] == [one], answer[bob] == [one, two] else {
            throw failure("the router answered \(answer): alice is on one, bob on one and two, carol offline")
        }
        try await end([one, two, idle])
        try await expect(["to alice", "to bob", "to all three"], on: one, in: inboxes[0], "alice and bob are on one")
        try await expect(["to bob", "to all three"], on: two, in: inboxes[1], "bob is on two, twice")
        try await expect([], on: idle, in: inboxes[2], "nobody is on idle")
    }

    func followsConnectionChanges() async throws {
        let one = try await presence.node("one")
        let two = try await presence.node("two")
        let dave = presence.user("dave")
        let first = presence.record(dave, on: one, "d1")
        _ = try await presence.connect(first)
        let inboxes = try await inboxes([one, two])
        _ = try await route([("before", [dave])])
        _ = try await presence.disconnect(first)
        _ = try await presence.connect(presence.record(dave, on: two, "d2"))
        let answer = try await route([("after", [dave])])
        guard answer == [dave: [two]] else {
            throw failure("after dave moved from one to two, the router answered \(answer)")
        }
        try await end([one, two])
        try await expect(["before"], on: one, in: inboxes[0], "dave left one before \"after\"")
        try await expect(["after"], on: two, in: inboxes[1], "dave came to two before \"after\"")
    }
}
