import CoreMetrics
import ImCore

/// Round-trip time and errors of the node's backplane calls, per operation:
/// `imserver_backplane_seconds{operation}` (a histogram) and
/// `imserver_backplane_errors_total{operation}`.
final class BackplaneMeters: Sendable {
    /// Every operation measured, by name.
    static let operations = [
        "connect", "disconnect", "nodes", "online_users", "renew_lease", "replace_connections", "reap",
        "remove_node", "join", "leave", "remove", "clear", "channels", "members", "channel_names",
        "channel_stats", "claim_token", "publish",
    ]

    private let timers: [String: Timer]
    private let errors: [String: Counter]

    init() {
        timers = Dictionary(
            uniqueKeysWithValues: Self.operations.map {
                ($0, Timer(label: "imserver_backplane_seconds", dimensions: [("operation", $0)]))
            })
        errors = Dictionary(
            uniqueKeysWithValues: Self.operations.map {
                ($0, Counter(label: "imserver_backplane_errors_total", dimensions: [("operation", $0)]))
            })
    }

    /// Runs `call`, recording how long it took under `operation`, and counting it as an error
    /// when it throws.
    func measure<Result: Sendable>(_ operation: String, _ call: () async throws -> Result) async throws -> Result {
        let start = ContinuousClock.now
        do {
            let result = try await call()
            timers[operation]?.record(duration: ContinuousClock.now - start)
            return result
        } catch {
            timers[operation]?.record(duration: ContinuousClock.now - start)
            errors[operation]?.increment()
            throw error
        }
    }
}

extension Timer {
    fileprivate func record(duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
