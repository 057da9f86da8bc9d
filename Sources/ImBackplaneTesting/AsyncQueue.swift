import Synchronization

/// A first-in-first-out queue between a producer and one consumer who waits with a timeout.
public final class AsyncQueue<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var head = 0
        var finished = false
        var waiter: (id: Int, continuation: CheckedContinuation<Element?, any Error>)?
        var nextWaiterID = 0
    }

    private let state = Mutex(State())

    /// An empty queue.
    public init() {}

    /// Adds an element, waking the consumer if it waits.
    public func push(_ element: Element) {
        let waiter = state.withLock { state -> CheckedContinuation<Element?, any Error>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter.continuation
            }
            state.items.append(element)
            return nil
        }
        waiter?.resume(returning: element)
    }

    /// Ends the queue: once drained, ``next(timeout:)`` returns `nil`.
    public func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<Element?, any Error>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter?.continuation
        }
        waiter?.resume(returning: nil)
    }

    /// The next element; `nil` once finished and drained; throws ``TimedOut`` after `timeout`.
    public func next(timeout: Duration) async throws -> Element? {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = state.withLock { state -> (Element?, Bool, Int?) in
                if state.head < state.items.count {
                    let element = state.items[state.head]
                    state.head += 1
                    if state.head > 1024, state.head * 2 > state.items.count {
                        state.items.removeFirst(state.head)
                        state.head = 0
                    }
                    return (element, true, nil)
                }
                if state.finished { return (nil, true, nil) }
                state.nextWaiterID += 1
                state.waiter = (state.nextWaiterID, continuation)
                return (nil, false, state.nextWaiterID)
            }
            if outcome.1 {
                continuation.resume(returning: outcome.0)
                return
            }
            guard let id = outcome.2 else { return }
            Task {
                try? await Task.sleep(for: timeout)
                let expired = self.state.withLock { state -> CheckedContinuation<Element?, any Error>? in
                    guard let waiter = state.waiter, waiter.id == id else { return nil }
                    state.waiter = nil
                    return waiter.continuation
                }
                expired?.resume(throwing: TimedOut(after: timeout))
            }
        }
    }
}

/// Nothing arrived within the time allowed.
public struct TimedOut: Error, CustomStringConvertible {
    /// How long was waited.
    public var after: Duration

    /// Waited `after` for nothing.
    public init(after: Duration) { self.after = after }

    public var description: String { "timed out after \(after)" }
}
