import NIOCore

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
struct TokenBucket: Sendable {
    private let rate: Double
    private let burst: Double
    private var tokens: Double
    private var last: NIODeadline

    /// A full bucket.
    init(rate: Int, burst: Int, now: NIODeadline = .now()) {
        self.rate = Double(max(rate, 0))
        self.burst = Double(max(burst, 1))
        self.tokens = self.burst
        self.last = now
    }

    /// Takes one token; `false` when none is left.
    mutating func take(now: NIODeadline = .now()) -> Bool {
        let elapsed = Double((now - last).nanoseconds) / 1e9
        last = now
        tokens = min(burst, tokens + elapsed * rate)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Whether the bucket has refilled completely by `now` (its user has been quiet).
    func isFull(now: NIODeadline = .now()) -> Bool {
        tokens + Double((now - last).nanoseconds) / 1e9 * rate >= burst
    }
}
