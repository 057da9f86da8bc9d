public import ImCore
public import ImHelper

/// Records a helper's online/offline events so a test can await them one by one.
public final class EventRecorder: Sendable {
    private let queue = AsyncQueue<PresenceEvent>()
    private let reader: Task<Void, Never>

    private init(events: AsyncStream<PresenceEvent>) {
        let queue = queue
        reader = Task {
            for await event in events { queue.push(event) }
            queue.finish()
        }
    }

    /// Starts recording `helper`'s events (from now on).
    public static func start(_ helper: ImHelper) async throws -> EventRecorder {
        EventRecorder(events: try await helper.events())
    }

    /// The next event; throws ``TimedOut`` if none arrives within `timeout`.
    public func next(timeout: Duration = .seconds(5)) async throws -> PresenceEvent {
        guard let event = try await queue.next(timeout: timeout) else { throw TestClientError.closed }
        return event
    }

    /// Stops recording.
    public func stop() { reader.cancel() }
}

/// Waits until `condition` holds, checking every 10 ms; throws ``TimedOut`` after `timeout`.
///
/// For conditions with no event to await (a counter on a node, say); prefer awaiting events.
public func waitUntil(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(after: timeout) }
        try await Task.sleep(for: .milliseconds(10))
    }
}
