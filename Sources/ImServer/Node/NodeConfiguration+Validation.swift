import ImCore

/// A setting with a value it cannot take: which key, the value, and what it may be.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    /// The setting's key, as in docs/configuration.md (`limits.maxFrameSize`).
    public var key: String
    /// The value given, as text.
    public var value: String
    /// What the setting accepts (a range with its unit).
    public var expected: String

    /// An error for `key`.
    public init(key: String, value: String, expected: String) {
        self.key = key
        self.value = value
        self.expected = expected
    }

    public var description: String { "setting \(key) = '\(value)' is invalid; expected \(expected)" }
}

extension NodeConfiguration {
    /// The longest any duration setting may be: one day.
    public static let longestDuration: Duration = .seconds(86_400)
    /// The longest ``flushInterval``: one second.
    public static let longestFlushInterval: Duration = .seconds(1)

    /// Checks every value against its range (see docs/configuration.md), so a node never starts
    /// with a limit NIO or the node would trap on or that makes no sense; the first bad value
    /// is reported with its key.
    public func validate() throws(ConfigurationError) {
        try limits.validate()
        guard (0...65_535).contains(port) else {
            throw ConfigurationError(key: "public.listen", value: String(port), expected: "a port from 0 to 65535")
        }
        guard path.hasPrefix("/") else {
            throw ConfigurationError(key: "public.path", value: path, expected: "a path starting with '/'")
        }
        let oneMillisecond = Duration.milliseconds(1)
        try Self.check("heartbeat.interval", pingInterval, oneMillisecond...Self.longestDuration)
        try Self.check("heartbeat.idleTimeout", idleTimeout, oneMillisecond...Self.longestDuration)
        guard idleTimeout > pingInterval else {
            throw ConfigurationError(
                key: "heartbeat.idleTimeout", value: "\(idleTimeout)",
                expected: "more than heartbeat.interval (\(pingInterval))")
        }
        try Self.check("lease.ttl", leaseTTL, oneMillisecond...Self.longestDuration)
        try Self.check("delivery.flushInterval", flushInterval, .zero...Self.longestFlushInterval)
    }

    static func check(_ key: String, _ value: Duration, _ range: ClosedRange<Duration>) throws(ConfigurationError) {
        guard range.contains(value) else {
            throw ConfigurationError(
                key: key, value: "\(value)",
                expected: "\(describe(range.lowerBound)) to \(describe(range.upperBound))")
        }
    }

    private static func describe(_ duration: Duration) -> String {
        duration == .zero ? "0 seconds" : "\(duration.seconds) seconds"
    }
}

extension Limits {
    /// The largest ``maxFrameSize``: 16 MiB (NIO's own bound is `UInt32.max`, past which the
    /// first upgrade would trap; a chat frame has no business being near either).
    public static let largestFrameSize = 16 * 1024 * 1024

    /// Each whole-number limit's key, value and allowed range.
    private var counts: [(key: String, value: Int, range: ClosedRange<Int>)] {
        [
            ("limits.maxFrameSize", maxFrameSize, 1...Self.largestFrameSize),
            ("limits.messagesPerSecond", messagesPerSecond, 1...1_000_000),
            ("limits.messageBurst", messageBurst, 1...1_000_000),
            ("limits.connectionsPerUser", connectionsPerUser, 1...1_000_000),
            ("limits.connectionsPerNode", connectionsPerNode, 1...100_000_000),
            ("limits.handshakesPerSecond", handshakesPerSecond, 1...10_000_000),
            ("limits.handshakesPerSource", handshakesPerSource, 1...10_000_000),
            ("limits.writeBufferHighWater", writeBufferHighWater, 1...(64 * 1024 * 1024)),
            ("limits.maxQueuedBytes", maxQueuedBytes, 1...(1024 * 1024 * 1024)),
            ("limits.pendingAcks", pendingAcks, 1...1_000_000),
        ]
    }

    /// Checks every limit against its range (see docs/configuration.md).
    public func validate() throws(ConfigurationError) {
        for (key, value, range) in counts where !range.contains(value) {
            throw ConfigurationError(
                key: key, value: String(value),
                expected: "a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        let durations = [
            ("limits.slowConsumerTimeout", slowConsumerTimeout),
            ("limits.handshakeTimeout", handshakeTimeout),
        ]
        for (key, value) in durations {
            try NodeConfiguration.check(key, value, Duration.milliseconds(1)...NodeConfiguration.longestDuration)
        }
    }
}

extension Duration {
    /// `seconds` as a duration, refusing (rather than trapping on) NaN, infinities and values
    /// outside `range`: for settings read as a `Double`.
    public static func setting(_ key: String, seconds: Double, in range: ClosedRange<Double>)
        throws(ConfigurationError) -> Duration
    {
        guard seconds.isFinite, range.contains(seconds) else {
            throw ConfigurationError(
                key: key, value: String(seconds),
                expected: "\(range.lowerBound) to \(range.upperBound) seconds")
        }
        return .seconds(seconds)
    }
}
