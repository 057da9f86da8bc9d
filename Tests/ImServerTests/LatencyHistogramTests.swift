import NIOCore
import Testing

@testable import ImServer

/// The delivery latency figures a node reads back for `GET /v1/node/stats`.
@Suite("Latency histogram and window")
struct LatencyHistogramTests {
    @Test("quantiles interpolate within the bucket, as histogram_quantile does")
    func quantiles() throws {
        var histogram = LatencyHistogram()
        #expect(histogram.quantile(0.5) == nil)
        for _ in 0..<98 { histogram.record(nanoseconds: 100_000) }  // ≤ 250 µs
        histogram.record(nanoseconds: 3_000_000)  // (2.5 ms, 5 ms]
        histogram.record(nanoseconds: 7_000_000_000)  // above 5 s
        #expect(histogram.samples == 100)
        #expect(histogram.counts[0] == 98)
        #expect(histogram.counts[4] == 1)
        #expect(histogram.counts[LatencyHistogram.bounds.count] == 1)
        // The 50th of 98 samples in [0, 250 µs]: 50/98 of the way.
        #expect(histogram.quantile(0.5) == .nanoseconds(250_000 * 50 / 98))
        // The 99th sample is the one in (2.5 ms, 5 ms], all of the way.
        #expect(histogram.quantile(0.99) == .milliseconds(5))
        // The last bucket has no upper bound: its lower bound.
        #expect(histogram.quantile(1) == .seconds(5))
        #expect(histogram.subtracting(histogram).samples == 0)
    }

    @Test("a reading covers the samples since the latest reading at least the span old")
    func window() throws {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        let window = LatencyWindow(span: .seconds(10), start: start)
        var cumulative = LatencyHistogram()
        cumulative.record(nanoseconds: 1_000)
        let first = window.read(cumulative, now: start + .seconds(1))
        #expect(first.histogram.samples == 1, "since the start")
        #expect(first.window == .seconds(1))
        cumulative.record(nanoseconds: 1_000)
        let second = window.read(cumulative, now: start + .seconds(5))
        #expect(second.histogram.samples == 2, "nothing 10 s old yet: since the start")
        cumulative.record(nanoseconds: 1_000)
        let third = window.read(cumulative, now: start + .seconds(12))
        #expect(third.histogram.samples == 2, "since the reading at 1 s: \(third)")
        #expect(third.window == .seconds(11))
        let fourth = window.read(cumulative, now: start + .seconds(16))
        #expect(fourth.histogram.samples == 1, "since the reading at 5 s")
        #expect(fourth.window == .seconds(11))
    }
}
