import ImCore
import Logging
import Synchronization

/// Applies the node's channel subscription changes to its bus subscriber one at a time, in
/// the order they were decided, and lets callers await their change.
///
/// Changes are enqueued while the caller holds the lock that decided them, so a subscribe and
/// an unsubscribe of the same subject can never overtake each other.
final class SubscriptionQueue: Sendable {
    private struct Item {
        var subscribe: [String]
        var unsubscribe: [String]
        var ticket: Int
    }

    private struct State {
        var lastTicket = 0
        var applied = 0
        var waiters: [(ticket: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let subjects: Subjects
    private let state = Mutex(State())
    private let stream: AsyncStream<Item>
    private let continuation: AsyncStream<Item>.Continuation

    init(subjects: Subjects) {
        self.subjects = subjects
        (stream, continuation) = AsyncStream<Item>.makeStream()
    }

    /// Queues the subscription part of `change`; returns a ticket for ``waitUntilApplied(_:)``.
    func enqueue(_ change: LocalDirectory.Change) -> Int {
        state.withLock { state in
            guard !change.subscribe.isEmpty || !change.unsubscribe.isEmpty else { return state.lastTicket }
            state.lastTicket += 1
            continuation.yield(
                Item(
                    subscribe: change.subscribe, unsubscribe: change.unsubscribe,
                    ticket: state.lastTicket))
            return state.lastTicket
        }
    }

    /// Returns once every change up to `ticket` was applied.
    func waitUntilApplied(_ ticket: Int) async {
        // Most connections change no subscription: their ticket is applied already.
        guard state.withLock({ $0.applied < ticket }) else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state in
                if state.applied >= ticket { return true }
                state.waiters.append((ticket, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Applies queued changes to `subscriber` until ``finish()``.
    func run(applyingTo subscriber: any BusSubscriber, logger: Logger) async {
        for await item in stream {
            do {
                if !item.unsubscribe.isEmpty {
                    try await subscriber.unsubscribe(item.unsubscribe.map(subjects.channel))
                }
                if !item.subscribe.isEmpty { try await subscriber.subscribe(item.subscribe.map(subjects.channel)) }
            } catch {
                logger.warning(
                    "channel subscription change failed; the bus retries on reconnect",
                    metadata: ["error": "\(error)"])
            }
            let ready = state.withLock { state in
                state.applied = item.ticket
                let ready = state.waiters.filter { $0.ticket <= item.ticket }.map(\.continuation)
                state.waiters.removeAll { $0.ticket <= item.ticket }
                return ready
            }
            for continuation in ready { continuation.resume() }
        }
        let rest = state.withLock { state in
            state.applied = state.lastTicket
            defer { state.waiters.removeAll() }
            return state.waiters.map(\.continuation)
        }
        for continuation in rest { continuation.resume() }
    }

    /// Ends ``run(applyingTo:logger:)`` after the changes already queued.
    func finish() { continuation.finish() }
}
