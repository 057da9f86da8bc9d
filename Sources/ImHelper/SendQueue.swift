import ImCore
import NIOCore
import NIOPosix
import Synchronization

/// Coalesces concurrent sends into shared backplane round trips (group commit).
///
/// While one batch is on its way, sends that arrive wait in a queue; the next batch takes
/// them all (up to ``maximumBatch``): one presence lookup for every receiver in it, then one
/// publish round trip with one bus message per subject (several envelopes for one subject
/// travel as one ``Envelope/batch(_:)``). A lone message to users without a receipt takes one
/// round trip instead when the backplane has a ``NodeRouter``; under load the cost per message
/// falls as batches grow. Sends keep their order: a batch is published
/// only after the one before it.
final class SendQueue: Sendable {
    /// Most items in one batch, so one bus message stays small.
    static let maximumBatch = 512

    /// About the most bytes of envelopes gathered in one bus message (NATS refuses messages
    /// over 1 MiB by default).
    static let maximumBusMessageBytes = 256 * 1024

    /// A message ready to go, or a run of them.
    enum Item: Sendable {
        /// A message to users (already unique).
        case users(Message, receivers: [ClientID], receipt: Bool)
        /// Envelopes for a channel's members or everyone, encoded already: one message, or a run
        /// of messages to the same subject (one item, and one result, for all of them).
        case publish(EnvelopeBatchEncoder, to: String)
    }

    /// What happened to an item: the receivers who were offline (none for a publish), or why it
    /// was not sent.
    typealias Outcome = Result<[ClientID], any Error>

    /// The items of one ``submit(_:)`` still waiting for a batch (the whole group, or what a
    /// full batch left of it), and where their results go: one entry and one lock per group,
    /// not per item, so a request of a thousand messages is moved and answered as one.
    private struct Group {
        var items: ArraySlice<Item>
        var results: ResultCollector
    }

    private struct State {
        var pending: [Group] = []
        var waiting = 0
        var draining = false
    }

    private let backplane: Backplane
    private let subjects: Subjects
    private let state = Mutex(State())

    /// A queue publishing on `backplane` with `subjects`.
    init(backplane: Backplane, subjects: Subjects) {
        self.backplane = backplane
        self.subjects = subjects
    }

    /// Sends `items`, all in the same batch when they fit; returns each one's outcome, in order.
    func submit(_ items: [Item]) async -> [Outcome] {
        await withCheckedContinuation { continuation in submit(items) { continuation.resume(returning: $0) } }
    }

    /// Sends `items` like ``submit(_:)`` and calls `completion` with their outcomes, once, on
    /// the thread that finished the last of them (at once, with none, when `items` is empty).
    func submit(_ items: [Item], completion: @escaping @Sendable ([Outcome]) -> Void) {
        guard !items.isEmpty else { return completion([]) }
        enqueue(Group(items: items[...], results: ResultCollector(count: items.count, onDone: completion)))
    }

    /// Sends waiting for a batch (not counting the batch on its way).
    var waiting: Int { state.withLock { $0.waiting } }

    private func enqueue(_ group: Group) {
        let start = state.withLock { state in
            state.pending.append(group)
            state.waiting += group.items.count
            guard !state.draining else { return false }
            state.draining = true
            return true
        }
        // The batch runs where the sender runs when that is an event loop (an API request's
        // task prefers its connection's loop): the backplane's I/O of that loop then resumes it
        // without waking another thread.
        if start {
            Task(executorPreference: MultiThreadedEventLoopGroup.currentEventLoop.map(EventLoopTaskExecutor.init)) {
                await self.drain()
            }
        }
    }

    private func drain() async {
        while true {
            let batch = state.withLock { state -> [Group] in
                guard !state.pending.isEmpty else {
                    state.draining = false
                    return []
                }
                return Self.takeBatch(from: &state)
            }
            if batch.isEmpty { return }
            await process(batch)
        }
    }

    /// The groups of the next batch, at most ``maximumBatch`` items: whole groups while they
    /// fit, then the head of the next one (its tail stays first in line).
    private static func takeBatch(from state: inout State) -> [Group] {
        var batch: [Group] = []
        var room = maximumBatch
        var taken = 0
        while taken < state.pending.count, room > 0 {
            let group = state.pending[taken]
            if group.items.count <= room {
                batch.append(group)
                room -= group.items.count
                taken += 1
            } else {
                let head = group.items.prefix(room)
                batch.append(Group(items: head, results: group.results))
                state.pending[taken].items = group.items.dropFirst(room)
                room = 0
            }
        }
        state.pending.removeFirst(taken)
        state.waiting -= maximumBatch - room
        return batch
    }

    private func process(_ batch: [Group]) async {
        if let router = backplane.router, let (group, message, receivers) = lone(batch) {
            let outcome = await route(message, to: receivers, through: router)
            group.results.set(from: group.items.startIndex, [outcome])
            return
        }
        var outbox = Outbox()
        var located: [ClientID: Set<NodeID>] = [:]
        var lookupFailure: (any Error)?
        let lookups = lookups(for: batch)
        if !lookups.isEmpty {
            do {
                located = try await backplane.presence.nodes(of: lookups)
            } catch {
                lookupFailure = error
            }
        }
        var outcomes: [[Outcome]] = []
        outcomes.reserveCapacity(batch.count)
        for group in batch {
            var results: [Outcome] = []
            results.reserveCapacity(group.items.count)
            for item in group.items {
                switch item {
                case .users(let message, let receivers, let receipt):
                    if let lookupFailure {
                        results.append(.failure(lookupFailure))
                    } else {
                        results.append(
                            .success(route(message, to: receivers, receipt: receipt, located: located, into: &outbox)))
                    }
                case .publish(let envelopes, let subject):
                    outbox.append(envelopes, to: subject)
                    results.append(.success([]))
                }
            }
            outcomes.append(results)
        }
        do {
            if !outbox.isEmpty { try await backplane.bus.publish(outbox.messages()) }
        } catch {
            // Nothing of this batch was published.
            for group in outcomes.indices {
                for position in outcomes[group].indices {
                    if case .success = outcomes[group][position] { outcomes[group][position] = .failure(error) }
                }
            }
        }
        for (group, results) in zip(batch, outcomes) {
            group.results.set(from: group.items.startIndex, results)
        }
    }

    /// The batch's message when a ``NodeRouter`` should take it in one round trip: a lone
    /// message to at most ``maximumRoutedReceivers`` users, without a receipt (its envelope
    /// then names all its receivers and is the same for every node). Batches of more look up,
    /// then publish, so that their envelopes for one node travel as one bus message (routed,
    /// each would be a bus message of its own: measured, the receiving node's CPU rose 15 % at
    /// 2,000 messages/s with up to eight routed); receipts need the lookup first.
    private func lone(_ batch: [Group]) -> (Group, Message, [ClientID])? {
        guard batch.count == 1, batch[0].items.count == 1,
            case .users(let message, let receivers, receipt: false) = batch[0].items.first,
            receivers.count <= Self.maximumRoutedReceivers
        else { return nil }
        return (batch[0], message, receivers)
    }

    /// Most receivers of a routed message: a router may work on its server for all of them in
    /// one step (one Lua script on Redis blocks the server while it runs), where a lookup is
    /// pipelined commands.
    static let maximumRoutedReceivers = 64

    /// Publishes `message` to the nodes of `receivers` through `router`, in one round trip.
    private func route(_ message: Message, to receivers: [ClientID], through router: any NodeRouter) async
        -> Outcome
    {
        let envelope = Envelope.delivery(Delivery(message: message, receivers: receivers))
        do {
            let located = try await router.publish(
                [RoutedMessage(users: receivers, payload: envelope.encoded())], toNodesUnder: subjects.nodePrefix)
            return .success(receivers.filter { located[$0] == nil })
        } catch {
            return .failure(error)
        }
    }

    /// Every user whose nodes the batch needs: receivers, and senders who want receipts.
    private func lookups(for batch: [Group]) -> [ClientID] {
        var seen = Set<ClientID>()
        var users: [ClientID] = []
        for group in batch {
            for item in group.items {
                guard case .users(let message, let receivers, let receipt) = item else { continue }
                for receiver in receivers where seen.insert(receiver).inserted { users.append(receiver) }
                if receipt && seen.insert(message.sender).inserted { users.append(message.sender) }
            }
        }
        return users
    }

    /// Adds one delivery per node holding any receiver, and `offline` receipts for the
    /// sender's nodes; returns who was offline.
    private func route(
        _ message: Message, to receivers: [ClientID], receipt: Bool, located: [ClientID: Set<NodeID>],
        into outbox: inout Outbox
    ) -> [ClientID] {
        let senderNodes = receipt ? (located[message.sender] ?? []).sorted() : []
        var byNode: [NodeID: [ClientID]] = [:]
        var reportedBy: [NodeID: [ClientID]] = [:]
        var offline: [ClientID] = []
        for receiver in receivers {
            guard let nodes = located[receiver], let first = nodes.min() else {
                offline.append(receiver)
                continue
            }
            for node in nodes { byNode[node, default: []].append(receiver) }
            if receipt { reportedBy[first, default: []].append(receiver) }
        }
        for (node, users) in byNode.sorted(by: { $0.key < $1.key }) {
            let delivery = Delivery(
                message: message, receivers: users, receiptFor: reportedBy[node] ?? [],
                senderNodes: senderNodes)
            outbox.append(.delivery(delivery), toNode: subjects.node(node))
        }
        for node in senderNodes {
            for receiver in offline {
                let receipt = Receipt(
                    messageID: message.id, sender: message.sender, receiver: receiver,
                    status: .offline)
                outbox.append(.receipt(receipt), toNode: subjects.node(node))
            }
        }
        return offline
    }
}

/// Envelopes gathered into bus messages so that every node receives them in the order sent.
///
/// Envelopes for one subject travel together as one batch where that cannot reorder what a
/// node receives. A node's own subject reaches that node alone, so its envelopes join the
/// subject's open bus message unless a channel or broadcast message (which may reach every
/// node) was started after it; channel and broadcast envelopes join only the last bus message.
/// A bus message stops taking envelopes at about ``SendQueue/maximumBusMessageBytes``, so a
/// large batch becomes several.
private struct Outbox {
    private struct Gathered {
        var subject: String
        /// The envelopes, encoded as they come.
        var encoder: EnvelopeBatchEncoder
    }

    private var gathered: [Gathered] = []
    /// Each node subject's last bus message (an index into `gathered`).
    private var open: [String: Int] = [:]
    /// The last bus message that may reach every node.
    private var lastShared = -1

    var isEmpty: Bool { gathered.isEmpty }

    /// Adds `envelope` for a node's own subject.
    mutating func append(_ envelope: Envelope, toNode subject: String) {
        let size = 64 + envelope.payloadSize
        // The same subject as the envelope before (messages to users of one node) is found
        // without hashing it.
        let last = gathered.count - 1
        let candidate = last >= 0 && gathered[last].subject == subject ? last : open[subject]
        if let index = candidate, index > lastShared,
            gathered[index].encoder.byteCount + size <= SendQueue.maximumBusMessageBytes
        {
            gathered[index].encoder.append(envelope)
            return
        }
        open[subject] = gathered.count
        var encoder = EnvelopeBatchEncoder(capacity: size)
        encoder.append(envelope)
        gathered.append(Gathered(subject: subject, encoder: encoder))
    }

    /// Adds `envelopes` (encoded, for a channel's members or everyone) after everything before.
    mutating func append(_ envelopes: EnvelopeBatchEncoder, to subject: String) {
        // They join the last bus message when it is for the same subject (a batch of messages
        // to one channel, sent in several requests) and has room.
        let last = gathered.count - 1
        if last >= 0, gathered[last].subject == subject,
            gathered[last].encoder.byteCount + envelopes.byteCount <= SendQueue.maximumBusMessageBytes
        {
            gathered[last].encoder.append(contentsOf: envelopes)
            return
        }
        lastShared = gathered.count
        gathered.append(Gathered(subject: subject, encoder: envelopes))
    }

    /// The bus messages, in order: each the envelope itself, or a batch of them. The outbox
    /// is empty afterwards.
    mutating func messages() -> [BusMessage] {
        defer {
            gathered.removeAll()
            open.removeAll()
            lastShared = -1
        }
        var messages: [BusMessage] = []
        messages.reserveCapacity(gathered.count)
        for index in gathered.indices {
            messages.append(BusMessage(subject: gathered[index].subject, payload: gathered[index].encoder.finish()))
        }
        return messages
    }
}

/// Gathers the outcomes of a group of items; reports them all once the last is in.
private final class ResultCollector: Sendable {
    private struct State {
        var results: [SendQueue.Outcome?]
        var remaining: Int
    }

    private let state: Mutex<State>
    private let onDone: @Sendable ([SendQueue.Outcome]) -> Void

    /// A collector for `count` outcomes that calls `onDone` once, when the last one is in.
    init(count: Int, onDone: @escaping @Sendable ([SendQueue.Outcome]) -> Void) {
        state = Mutex(State(results: Array(repeating: nil, count: count), remaining: count))
        self.onDone = onDone
    }

    /// Sets the outcomes of the items from `start` on, in order.
    func set(from start: Int, _ results: [SendQueue.Outcome]) {
        let outcome = state.withLock { state -> [SendQueue.Outcome]? in
            for (offset, result) in results.enumerated() { state.results[start + offset] = result }
            state.remaining -= results.count
            guard state.remaining == 0 else { return nil }
            return state.results.map { $0 ?? .failure(CancellationError()) }
        }
        if let outcome { onDone(outcome) }
    }
}
