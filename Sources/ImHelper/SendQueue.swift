import ImCore
import NIOCore
import NIOPosix
import Synchronization

/// Coalesces concurrent sends into shared backplane round trips (group commit).
///
/// While one batch is on its way, sends that arrive wait in a queue; the next batch takes
/// them all (up to ``maximumBatch``): one presence lookup for every receiver in it, then one
/// publish round trip with one bus message per subject (several envelopes for one subject
/// travel as one ``Envelope/batch(_:)``). A lone send costs what it did before; under load
/// the cost per message falls as batches grow. Sends keep their order: a batch is published
/// only after the one before it.
final class SendQueue: Sendable {
    /// Most sends in one batch, so one bus message stays small.
    static let maximumBatch = 512

    /// A message ready to go.
    enum Item: Sendable {
        /// A message to users (already unique).
        case users(Message, receivers: [ClientID], receipt: Bool)
        /// An envelope for a channel's members or everyone, with its message id.
        case publish(Envelope, to: String, id: String)
    }

    /// An item waiting for its batch, and where its result goes.
    private struct Pending {
        var item: Item
        var results: ResultCollector
        var index: Int
    }

    private struct State {
        var pending: [Pending] = []
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

    /// Sends `items`, all in the same batch when they fit; returns each one's result, in order.
    func submit(_ items: [Item]) async -> [Result<SendResult, any Error>] {
        guard !items.isEmpty else { return [] }
        return await withCheckedContinuation { continuation in
            let results = ResultCollector(count: items.count) { continuation.resume(returning: $0) }
            enqueue(items.enumerated().map { Pending(item: $1, results: results, index: $0) })
        }
    }

    /// Sends waiting for a batch (not counting the batch on its way).
    var waiting: Int { state.withLock { $0.pending.count } }

    private func enqueue(_ items: [Pending]) {
        let start = state.withLock { state in
            state.pending.append(contentsOf: items)
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
            let items = state.withLock { state -> [Pending] in
                guard !state.pending.isEmpty else {
                    state.draining = false
                    return []
                }
                let count = min(state.pending.count, Self.maximumBatch)
                defer { state.pending.removeFirst(count) }
                return Array(state.pending.prefix(count))
            }
            if items.isEmpty { return }
            await process(items)
        }
    }

    private func process(_ items: [Pending]) async {
        var outbox = Outbox()
        var outcomes = [Result<SendResult, any Error>?](repeating: nil, count: items.count)
        var located: [ClientID: Set<NodeID>] = [:]
        var lookupFailure: (any Error)?
        let lookups = lookups(for: items)
        if !lookups.isEmpty {
            do {
                located = try await backplane.presence.nodes(of: lookups)
            } catch {
                lookupFailure = error
            }
        }
        for (position, pending) in items.enumerated() {
            switch pending.item {
            case .users(let message, let receivers, let receipt):
                if let lookupFailure {
                    outcomes[position] = .failure(lookupFailure)
                } else {
                    outcomes[position] = .success(
                        route(message, to: receivers, receipt: receipt, located: located, into: &outbox))
                }
            case .publish(let envelope, let subject, let id):
                outbox.append(envelope, to: subject, reachesEveryNode: true)
                outcomes[position] = .success(SendResult(id: id, offline: []))
            }
        }
        do {
            if !outbox.isEmpty { try await backplane.bus.publish(outbox.messages()) }
        } catch {
            // Nothing of this batch was published.
            for position in outcomes.indices {
                if case .success? = outcomes[position] { outcomes[position] = .failure(error) }
            }
        }
        for (pending, outcome) in zip(items, outcomes) {
            pending.results.set(pending.index, outcome ?? .failure(CancellationError()))
        }
    }

    /// Every user whose nodes the batch needs: receivers, and senders who want receipts.
    private func lookups(for items: [Pending]) -> [ClientID] {
        var seen = Set<ClientID>()
        var users: [ClientID] = []
        for pending in items {
            guard case .users(let message, let receivers, let receipt) = pending.item else { continue }
            for receiver in receivers where seen.insert(receiver).inserted { users.append(receiver) }
            if receipt && seen.insert(message.sender).inserted { users.append(message.sender) }
        }
        return users
    }

    /// Adds one delivery per node holding any receiver, and `offline` receipts for the
    /// sender's nodes; returns who was offline.
    private func route(
        _ message: Message, to receivers: [ClientID], receipt: Bool, located: [ClientID: Set<NodeID>],
        into outbox: inout Outbox
    ) -> SendResult {
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
            outbox.append(.delivery(delivery), to: subjects.node(node), reachesEveryNode: false)
        }
        for node in senderNodes {
            for receiver in offline {
                let receipt = Receipt(
                    messageID: message.id, sender: message.sender, receiver: receiver,
                    status: .offline)
                outbox.append(.receipt(receipt), to: subjects.node(node), reachesEveryNode: false)
            }
        }
        return SendResult(id: message.id, offline: offline)
    }
}

/// Envelopes gathered into bus messages so that every node receives them in the order sent.
///
/// Envelopes for one subject travel together as one batch where that cannot reorder what a
/// node receives. A node's own subject reaches that node alone, so its envelopes join the
/// subject's open bus message unless a channel or broadcast message (which may reach every
/// node) was started after it; a channel or broadcast envelope joins only the last bus message.
/// A bus message stops taking envelopes at about ``maximumBytes`` (NATS refuses messages over
/// 1 MiB by default), so a large batch becomes several.
private struct Outbox {
    /// About the most bytes of envelopes gathered in one bus message.
    static let maximumBytes = 256 * 1024

    private struct Gathered {
        var subject: String
        var envelopes: [Envelope]
        var bytes: Int
    }

    private var gathered: [Gathered] = []
    /// Each subject's last bus message (an index into `gathered`).
    private var open: [String: Int] = [:]
    /// The last bus message that may reach every node.
    private var lastShared = -1

    var isEmpty: Bool { gathered.isEmpty }

    /// Adds `envelope` for a node's own subject (`reachesEveryNode` false) or for a channel or
    /// everyone (true).
    mutating func append(_ envelope: Envelope, to subject: String, reachesEveryNode: Bool) {
        let size = 64 + envelope.payloadSize
        if let index = open[subject], gathered[index].bytes + size <= Self.maximumBytes,
            reachesEveryNode ? index == gathered.count - 1 : index > lastShared
        {
            gathered[index].envelopes.append(envelope)
            gathered[index].bytes += size
            return
        }
        open[subject] = gathered.count
        if reachesEveryNode { lastShared = gathered.count }
        gathered.append(Gathered(subject: subject, envelopes: [envelope], bytes: size))
    }

    /// The bus messages, in order: each the envelope itself, or a batch of them.
    func messages() -> [BusMessage] {
        gathered.map { group in
            let envelope = group.envelopes.count == 1 ? group.envelopes[0] : Envelope.batch(group.envelopes)
            return BusMessage(subject: group.subject, payload: envelope.encoded())
        }
    }
}

/// Gathers the results of a group of items; reports them all once the last is in.
private final class ResultCollector: Sendable {
    private struct State {
        var results: [Result<SendResult, any Error>?]
        var remaining: Int
    }

    private let state: Mutex<State>
    private let onDone: @Sendable ([Result<SendResult, any Error>]) -> Void

    /// A collector for `count` results that calls `onDone` once, when the last one is in.
    init(count: Int, onDone: @escaping @Sendable ([Result<SendResult, any Error>]) -> Void) {
        state = Mutex(State(results: Array(repeating: nil, count: count), remaining: count))
        self.onDone = onDone
    }

    func set(_ index: Int, _ result: Result<SendResult, any Error>) {
        let outcome = state.withLock { state -> [Result<SendResult, any Error>]? in
            state.results[index] = result
            state.remaining -= 1
            guard state.remaining == 0 else { return nil }
            return state.results.map { $0 ?? .failure(CancellationError()) }
        }
        if let outcome { onDone(outcome) }
    }
}
