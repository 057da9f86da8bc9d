import ImCore
import NIOCore
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

    /// A send to users, waiting for its batch.
    struct UserSend {
        var message: Message
        var receivers: [ClientID]
        var receipt: Bool
        var completion: @Sendable (Result<SendResult, any Error>) -> Void
    }

    /// A publish to a channel or to everyone, waiting for its batch.
    struct Publish {
        var subject: String
        var envelope: Envelope
        var completion: @Sendable (Result<Void, any Error>) -> Void
    }

    private enum Item {
        case users(UserSend)
        case publish(Publish)
    }

    private struct State {
        var pending: [Item] = []
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

    /// Sends each message to its receivers (already unique), all in the same batch when they
    /// fit; returns the results in order, or the first error.
    func send(_ sends: [(message: Message, receivers: [ClientID], receipt: Bool)]) async throws -> [SendResult] {
        guard !sends.isEmpty else { return [] }
        return try await withCheckedThrowingContinuation { continuation in
            let collector = ResultCollector(count: sends.count) { continuation.resume(with: $0) }
            enqueue(
                sends.enumerated().map { index, send in
                    .users(
                        UserSend(message: send.message, receivers: send.receivers, receipt: send.receipt) {
                            collector.set(index, $0)
                        })
                })
        }
    }

    /// Publishes `envelope` on `subject`.
    func publish(_ envelope: Envelope, to subject: String) async throws {
        try await withCheckedThrowingContinuation { continuation in
            enqueue([.publish(Publish(subject: subject, envelope: envelope) { continuation.resume(with: $0) })])
        }
    }

    /// Sends waiting for a batch (not counting the batch on its way).
    var waiting: Int { state.withLock { $0.pending.count } }

    private func enqueue(_ items: [Item]) {
        let start = state.withLock { state in
            state.pending.append(contentsOf: items)
            guard !state.draining else { return false }
            state.draining = true
            return true
        }
        if start { Task { await self.drain() } }
    }

    private func drain() async {
        while true {
            let items = state.withLock { state -> [Item] in
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

    private func process(_ items: [Item]) async {
        var users: [UserSend] = []
        var publishes: [Publish] = []
        for item in items {
            switch item {
            case .users(let send): users.append(send)
            case .publish(let publish): publishes.append(publish)
            }
        }
        var outbox = Outbox()
        var results: [(UserSend, SendResult)] = []
        if !users.isEmpty {
            do {
                let located = try await backplane.presence.nodes(of: lookups(for: users))
                for send in users { results.append((send, route(send, located: located, into: &outbox))) }
            } catch {
                for send in users { send.completion(.failure(error)) }
            }
        }
        for publish in publishes { outbox.append(publish.envelope, to: publish.subject) }
        do {
            if !outbox.isEmpty { try await backplane.bus.publish(outbox.messages()) }
        } catch {
            for (send, _) in results { send.completion(.failure(error)) }
            for publish in publishes { publish.completion(.failure(error)) }
            return
        }
        for (send, result) in results { send.completion(.success(result)) }
        for publish in publishes { publish.completion(.success(())) }
    }

    /// Every user whose nodes the batch needs: receivers, and senders who want receipts.
    private func lookups(for sends: [UserSend]) -> [ClientID] {
        var seen = Set<ClientID>()
        var users: [ClientID] = []
        for send in sends {
            for receiver in send.receivers where seen.insert(receiver).inserted { users.append(receiver) }
            if send.receipt && seen.insert(send.message.sender).inserted { users.append(send.message.sender) }
        }
        return users
    }

    /// Adds one delivery per node holding any receiver, and `offline` receipts for the
    /// sender's nodes; returns who was offline.
    private func route(_ send: UserSend, located: [ClientID: Set<NodeID>], into outbox: inout Outbox) -> SendResult {
        let message = send.message
        let senderNodes = send.receipt ? (located[message.sender] ?? []).sorted() : []
        var byNode: [NodeID: [ClientID]] = [:]
        var reportedBy: [NodeID: [ClientID]] = [:]
        var offline: [ClientID] = []
        for receiver in send.receivers {
            guard let nodes = located[receiver], let first = nodes.min() else {
                offline.append(receiver)
                continue
            }
            for node in nodes { byNode[node, default: []].append(receiver) }
            if send.receipt { reportedBy[first, default: []].append(receiver) }
        }
        for (node, users) in byNode.sorted(by: { $0.key < $1.key }) {
            let delivery = Delivery(
                message: message, receivers: users, receiptFor: reportedBy[node] ?? [],
                senderNodes: senderNodes)
            outbox.append(.delivery(delivery), to: subjects.node(node))
        }
        for node in senderNodes {
            for receiver in offline {
                let receipt = Receipt(
                    messageID: message.id, sender: message.sender, receiver: receiver,
                    status: .offline)
                outbox.append(.receipt(receipt), to: subjects.node(node))
            }
        }
        return SendResult(id: message.id, offline: offline)
    }
}

/// Envelopes grouped by subject, subjects in the order they first appear.
private struct Outbox {
    private var subjects: [String] = []
    private var envelopes: [String: [Envelope]] = [:]

    var isEmpty: Bool { subjects.isEmpty }

    mutating func append(_ envelope: Envelope, to subject: String) {
        if envelopes[subject] == nil { subjects.append(subject) }
        envelopes[subject, default: []].append(envelope)
    }

    /// One bus message per subject: the envelope itself, or a batch of them.
    func messages() -> [BusMessage] {
        subjects.map { subject in
            let items = envelopes[subject] ?? []
            let envelope = items.count == 1 ? items[0] : Envelope.batch(items)
            return BusMessage(subject: subject, payload: envelope.encoded())
        }
    }
}

/// Gathers the results of a group of sends; reports once all are in (the first error wins).
private final class ResultCollector: Sendable {
    private struct State {
        var results: [SendResult?]
        var remaining: Int
        var failure: (any Error)?
    }

    private let state: Mutex<State>
    private let onDone: @Sendable (Result<[SendResult], any Error>) -> Void

    /// A collector for `count` results that calls `onDone` once, when the last one is in.
    init(count: Int, onDone: @escaping @Sendable (Result<[SendResult], any Error>) -> Void) {
        state = Mutex(State(results: Array(repeating: nil, count: count), remaining: count))
        self.onDone = onDone
    }

    func set(_ index: Int, _ result: Result<SendResult, any Error>) {
        let outcome = state.withLock { state -> Result<[SendResult], any Error>? in
            switch result {
            case .success(let value): state.results[index] = value
            case .failure(let error): state.failure = state.failure ?? error
            }
            state.remaining -= 1
            guard state.remaining == 0 else { return nil }
            if let failure = state.failure { return .failure(failure) }
            return .success(state.results.compactMap { $0 })
        }
        if let outcome { onDone(outcome) }
    }
}
