import NIOCore
import Testing

@testable import ImServer

@Suite("Token bucket")
struct TokenBucketTests {
    /// A fixed start, so every test runs on simulated time only.
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    private func takes(_ bucket: inout TokenBucket, count: Int, at now: NIODeadline) -> [Bool] {
        (0..<count).map { _ in bucket.take(now: now) }
    }

    @Test("a full bucket allows its burst at once, then refuses", arguments: [1, 2, 5, 50])
    func burstThenRefuse(_ burst: Int) {
        var bucket = TokenBucket(rate: 1, burst: burst, now: start)
        #expect(takes(&bucket, count: burst, at: start) == Array(repeating: true, count: burst))
        #expect(takes(&bucket, count: 1, at: start) == [false])
        #expect(takes(&bucket, count: 1, at: start) == [false])
    }

    @Test("tokens come back at the configured rate")
    func refill() {
        var bucket = TokenBucket(rate: 2, burst: 2, now: start)
        #expect(takes(&bucket, count: 2, at: start) == [true, true])
        #expect(takes(&bucket, count: 1, at: start) == [false])

        // Half a token after 250 ms at 2/s: still refused.
        #expect(takes(&bucket, count: 1, at: start + .milliseconds(250)) == [false])
        // A whole token by 500 ms.
        #expect(takes(&bucket, count: 1, at: start + .milliseconds(500)) == [true])
        #expect(takes(&bucket, count: 1, at: start + .milliseconds(500)) == [false])
        // Two more seconds give four tokens, but the bucket holds only two.
        let later = start + .milliseconds(2500)
        #expect(takes(&bucket, count: 3, at: later) == [true, true, false])
    }

    @Test("fractions of a token add up across refused takes")
    func fractionsAccumulate() {
        // 4 tokens a second: every 62.5 ms brings a quarter token (exact in binary floating point).
        var bucket = TokenBucket(rate: 4, burst: 1, now: start)
        #expect(takes(&bucket, count: 1, at: start) == [true])
        var now = start
        var results: [Bool] = []
        for _ in 0..<8 {
            now = now + .nanoseconds(62_500_000)
            results.append(bucket.take(now: now))
        }
        #expect(results == [false, false, false, true, false, false, false, true])
    }

    @Test("a long idle period refills only up to the burst")
    func capAtBurst() {
        var bucket = TokenBucket(rate: 1000, burst: 3, now: start)
        #expect(takes(&bucket, count: 3, at: start) == [true, true, true])
        let muchLater = start + .hours(5)
        #expect(takes(&bucket, count: 4, at: muchLater) == [true, true, true, false])
    }

    @Test("over a simulated period the number of allowed takes follows the rate")
    func steadyRate() {
        var bucket = TokenBucket(rate: 5, burst: 1, now: start)
        var allowed = 0
        // Ask every millisecond for ten simulated seconds.
        for millisecond in 0..<10_000 {
            if bucket.take(now: start + .milliseconds(Int64(millisecond))) { allowed += 1 }
        }
        // One saved-up token plus five a second for (almost) ten seconds.
        #expect((49...51).contains(allowed), "allowed \(allowed)")
    }

    @Test("rate 0 allows the burst and never refills")
    func zeroRate() {
        var bucket = TokenBucket(rate: 0, burst: 2, now: start)
        #expect(takes(&bucket, count: 3, at: start) == [true, true, false])
        #expect(takes(&bucket, count: 1, at: start + .seconds(1)) == [false])
        #expect(takes(&bucket, count: 1, at: start + .hours(24 * 365)) == [false])
    }

    @Test("a negative rate behaves like rate 0 (no refill, no debt)")
    func negativeRate() {
        var bucket = TokenBucket(rate: -10, burst: 2, now: start)
        // Time passing before the first take must not drain the full bucket.
        #expect(takes(&bucket, count: 3, at: start + .seconds(10)) == [true, true, false])
        #expect(takes(&bucket, count: 1, at: start + .seconds(100)) == [false])
    }

    @Test("a burst below one still allows one take", arguments: [0, -1, -100])
    func minimumBurst(_ burst: Int) {
        var bucket = TokenBucket(rate: 1, burst: burst, now: start)
        #expect(takes(&bucket, count: 1, at: start) == [true])
        #expect(takes(&bucket, count: 1, at: start) == [false])
        #expect(takes(&bucket, count: 1, at: start + .seconds(1)) == [true])
    }

    @Test("refused takes do not consume tokens")
    func refusalIsFree() {
        var bucket = TokenBucket(rate: 1, burst: 1, now: start)
        #expect(takes(&bucket, count: 1, at: start) == [true])
        // Hammering while empty...
        for step in 1...99 {
            #expect(takes(&bucket, count: 1, at: start + .milliseconds(Int64(step * 10))) == [false])
        }
        // ...does not delay the next token past one second.
        #expect(takes(&bucket, count: 1, at: start + .seconds(1)) == [true])
    }

    @Test("separate buckets are independent")
    func independentBuckets() {
        var first = TokenBucket(rate: 0, burst: 1, now: start)
        var second = first
        #expect(takes(&first, count: 1, at: start) == [true])
        #expect(takes(&first, count: 1, at: start) == [false])
        #expect(takes(&second, count: 1, at: start) == [true])
    }
}
