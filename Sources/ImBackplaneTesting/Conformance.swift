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
    /// Runs `operation`, turning an error into a failure that says which operation threw.
    func attempt<T>(_ what: String, _ operation: () async throws -> T) async throws -> T {
        do {
            return try await operation()
        } catch let failure as ConformanceFailure {
            throw failure
        } catch {
            throw failure("\(what) threw \(error)")
        }
    }
}
