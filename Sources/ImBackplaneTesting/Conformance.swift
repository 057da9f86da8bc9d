import ImBackplane
import ServiceLifecycle
import Synchronization

/// How a conformance check ended when it did not fail.
public enum ConformanceOutcome: Sendable, Equatable {
    /// The check ran and the plugin kept the clause.
    case passed
    /// The check does not apply to this plugin as configured (for example a backend restart
    /// for an in-process backplane, which has no backend); the reason says why. Not a skip of
    /// the suite: the check ran and recorded this.
    case notApplicable(String)
}

/// A contract clause a backplane plugin broke, found by ``BusConformance`` or ``PresenceConformance``.
public struct ConformanceFailure: Error, CustomStringConvertible {
    /// The check that failed: the raw value of a `BusConformance.Check` or `PresenceConformance.Check`.
    public var check: String
    /// What broke, written for the plugin's author.
    public var message: String

    /// A failure of `check`, described by `message`.
    public init(check: String, message: String) {
        self.check = check
        self.message = message
    }

    /// `conformance check '<check>' failed: <message>`.
    public var description: String { "conformance check '\(check)' failed: \(message)" }
}

/// Calls `attempt` until it returns a value or `timeout` has passed, pausing `interval` between
/// calls; `nil` when time ran out. Polling, not a fixed wait: it returns as soon as `attempt` does.
func poll<T>(
    every interval: Duration = .milliseconds(20), for timeout: Duration,
    _ attempt: () async throws -> T?
) async throws -> T? {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while true {
        if let value = try await attempt() { return value }
        if clock.now >= deadline { return nil }
        try await Task.sleep(for: interval)
    }
}

/// `value` for a failure message, with optionals shown as their content or `nil`.
func show<T>(_ value: T) -> String {
    if let optional = value as? any OptionalDescribing { return optional.shownValue }
    return "\(value)"
}

/// An optional that describes itself without the `Optional(...)` wrapper.
private protocol OptionalDescribing {
    /// The wrapped value's description, or `nil`.
    var shownValue: String { get }
}

extension Optional: OptionalDescribing {
    fileprivate var shownValue: String {
        switch self {
        case .some(let value): show(value)
        case .none: "nil"
        }
    }
}

/// `duration` in whole milliseconds, for failure messages.
func milliseconds(_ duration: Duration) -> String {
    "\(Int((duration / .milliseconds(1)).rounded())) ms"
}

/// The first `limit` of `items` joined by commas, then how many more there are.
func list(_ items: [String], limit: Int = 5) -> String {
    let shown = items.prefix(limit).joined(separator: ", ")
    return items.count > limit ? shown + " and \(items.count - limit) more" : shown
}

/// Zero-padded decimal of `number`, `width` digits at least, so ids sort like the numbers.
func padded(_ number: Int, width: Int = 3) -> String {
    let digits = String(number)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

/// What the bus and presence harnesses share: turning errors into ``ConformanceFailure``s.
protocol ConformanceHarness: Sendable {
    /// A failure of the running check with `message`.
    func failure(_ message: String) -> ConformanceFailure
}

extension ConformanceHarness {
    /// Runs `operation`, turning an error into a failure that says which operation threw; an
    /// error that is not a `BackplaneError` is named as such (every failure must be one).
    func attempt<T>(_ what: String, _ operation: () async throws -> T) async throws -> T {
        do {
            return try await operation()
        } catch let failure as ConformanceFailure {
            throw failure
        } catch let error as BackplaneError {
            throw failure("\(what) threw \(error)")
        } catch {
            throw notBackplaneError(what, error)
        }
    }

    /// The failure for `what` throwing `error`, which is not a `BackplaneError`.
    func notBackplaneError(_ what: String, _ error: any Error) -> ConformanceFailure {
        failure(
            "\(what) threw \(type(of: error)).\(error), which is not a BackplaneError; every failure must be "
                + "thrown as BackplaneError (.unavailable, .timedOut, .protocolViolation or .closed) so callers "
                + "can tell a backplane outage from their own mistakes")
    }

    /// Runs `operation`, which may fail while the backend is away: `nil` when it threw a
    /// `BackplaneError` (recorded in `lastError`), a failure for any other error.
    func tolerating<T>(_ what: String, lastError: inout String?, _ operation: () async throws -> T) async throws -> T? {
        do {
            return try await operation()
        } catch let error as BackplaneError {
            lastError = "\(what) threw \(error)"
            return nil
        } catch {
            throw notBackplaneError(what, error)
        }
    }

    /// Runs `operation` made before `run()`: it must return or throw a `BackplaneError` within
    /// `bound`; returns its value, or `nil` when it threw a `BackplaneError`.
    func beforeRun<T: Sendable>(
        _ what: String, within bound: Duration,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T? {
        switch await withinBound(bound, operation) {
        case nil:
            throw failure(
                "\(what), called before run(), neither returned nor threw within \(bound); before run() has "
                    + "connected, calls must wait a bounded time or throw BackplaneError")
        case .success(let value)?:
            return value
        case .failure(let error)? where error is BackplaneError:
            return nil
        case .failure(let error)?:
            throw notBackplaneError("\(what), called before run(),", error)
        }
    }
}

/// The result of `operation` if it finishes within `bound`, else `nil` (then it is cancelled
/// and left to finish on its own: a call that hangs must not hang the check).
func withinBound<T: Sendable>(_ bound: Duration, _ operation: @escaping @Sendable () async throws -> T)
    async -> Result<T, any Error>?
{
    let race = Race<Result<T, any Error>?>()
    let result = await withCheckedContinuation { continuation in
        race.start(continuation)
        race.add(
            Task {
                do {
                    race.finish(.success(try await operation()))
                } catch {
                    race.finish(.failure(error))
                }
            })
        race.add(
            Task {
                try? await Task.sleep(for: bound)
                race.finish(nil)
            })
    }
    race.cancelAll()
    return result
}

/// Tasks racing to resume one continuation: the first `finish` wins.
private final class Race<Value: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Value, Never>?
        var tasks: [Task<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Sets the continuation the first ``finish(_:)`` resumes.
    func start(_ continuation: CheckedContinuation<Value, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    /// Keeps `task` to cancel once the race is decided.
    func add(_ task: Task<Void, Never>) {
        state.withLock { $0.tasks.append(task) }
    }

    /// Resumes the continuation with `value` unless another task did already.
    func finish(_ value: Value) {
        let continuation = state.withLock { state in
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(returning: value)
    }

    /// Cancels every task of the race.
    func cancelAll() {
        for task in state.withLock({ $0.tasks }) { task.cancel() }
    }
}

/// Runs `service` in a child task while `body` runs, then cancels it; fails the check when
/// `run()` ended on its own meanwhile (it must run until graceful shutdown or cancellation).
/// `beforeRun`, if any, runs first, with the service not yet running.
func whileRunning(
    _ service: any Service, harness: some ConformanceHarness, beforeRun: (() async throws -> Void)? = nil,
    body: () async throws -> Void, tearDown: () async -> Void
) async throws {
    let ending = RunEnding()
    var outcome: Result<Void, any Error> = .success(())
    if let beforeRun {
        do {
            try await beforeRun()
        } catch {
            outcome = .failure(error)
        }
    }
    if case .failure = outcome {
        await tearDown()
    } else {
        outcome = await withTaskGroup(of: Void.self, returning: Result<Void, any Error>.self) { group in
            group.addTask {
                do {
                    try await service.run()
                    ending.record("returned")
                } catch {
                    ending.record("threw \(error)")
                }
            }
            var outcome: Result<Void, any Error>
            do {
                try await body()
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            let earlyEnd = ending.ending
            await tearDown()
            group.cancelAll()
            await group.waitForAll()
            if let earlyEnd {
                var message =
                    "run() \(earlyEnd) while the check was running; it must keep running until graceful shutdown or cancellation"
                if case .failure(let error) = outcome { message += " (the check then failed: \(error))" }
                outcome = .failure(harness.failure(message))
            }
            return outcome
        }
    }
    switch outcome {
    case .success: return
    case .failure(let failure as ConformanceFailure): throw failure
    case .failure(let error): throw harness.failure("unexpected error \(error)")
    }
}

/// How a service's `run()` ended, if it did before the kit cancelled it.
private final class RunEnding: Sendable {
    private let state = Mutex<String?>(nil)

    /// Notes how `run()` ended.
    func record(_ ending: String) { state.withLock { $0 = ending } }

    /// How `run()` ended so far, or `nil` while it runs.
    var ending: String? { state.withLock { $0 } }
}

/// Polls `health` until it is `.up`, for at most `timeout`; fails the check otherwise.
func waitUntilUp(
    _ health: () -> BackplaneHealth, _ what: String, timeout: Duration,
    harness: some ConformanceHarness
) async throws {
    let up = try await poll(for: timeout) { health().isUp ? true : nil }
    guard up != nil else {
        throw harness.failure(
            "\(what) health was still \"\(health())\" \(timeout) after run() started; it must become .up once the backend is reachable"
        )
    }
}
