import Histogram

/// Latency histograms: microseconds from 1 µs to 60 s, three significant digits.
enum LatencyHistogram {
    /// The largest latency tracked, in microseconds; larger ones are recorded as this.
    static let highest: UInt64 = 60_000_000

    /// An empty histogram of the benchmark's layout.
    static func make() -> Histogram<UInt64> {
        Histogram<UInt64>(
            lowestDiscernibleValue: 1, highestTrackableValue: highest, numberOfSignificantValueDigits: .three)
    }

    /// The value at `percentile` (0-100) in milliseconds.
    static func milliseconds(_ histogram: Histogram<UInt64>, percentile: Double) -> Double {
        histogram.totalCount == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1000
    }
}

/// A histogram as plain numbers, to cross a process boundary exactly: the non-zero buckets
/// as (highest equivalent value, count) pairs, which land in the same buckets when recorded
/// again, and the exact largest value.
struct SparseHistogram: Sendable, Codable {
    /// Flattened pairs: value, count, value, count, …
    var pairs: [UInt64] = []
    /// The largest value recorded, exactly.
    var maxRecorded: UInt64 = 0

    init() {}

    /// The non-zero buckets of `histogram`.
    init(_ histogram: Histogram<UInt64>) {
        for bucket in histogram.recordedValues() {
            pairs.append(bucket.value)
            pairs.append(bucket.count)
        }
        maxRecorded = histogram.totalCount == 0 ? 0 : histogram.maxRecorded
    }

    /// Records every bucket into `histogram`.
    func add(to histogram: inout Histogram<UInt64>) {
        var index = 0
        while index + 1 < pairs.count {
            histogram.record(Swift.min(pairs[index], LatencyHistogram.highest), count: pairs[index + 1])
            index += 2
        }
    }

    /// The histogram these buckets describe.
    var histogram: Histogram<UInt64> {
        var result = LatencyHistogram.make()
        add(to: &result)
        return result
    }
}
