/// Delivery latency samples counted per bucket, for figures the node reads back itself
/// (``NodeSnapshot``): the swift-metrics timer it also feeds can only be written. The bounds
/// are those the executable gives Prometheus (docs/operations.md), so both tell the same story.
public struct LatencyHistogram: Sendable, Equatable {
    /// The buckets' upper bounds, in nanoseconds (250 µs to 5 s); a last bucket above them holds
    /// the rest.
    public static let bounds: [Int64] = [
        250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000,
        250_000_000, 500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000,
    ]

    /// Samples per bucket: one entry per bound, and one for samples above the last bound.
    public private(set) var counts: [Int]

    /// A histogram without samples.
    public init() { counts = Array(repeating: 0, count: Self.bounds.count + 1) }

    /// A histogram with these counts per bucket (``bounds``' count plus one of them).
    public init?(counts: [Int]) {
        guard counts.count == Self.bounds.count + 1 else { return nil }
        self.counts = counts
    }

    /// How many samples it holds.
    public var samples: Int { counts.reduce(0, +) }

    /// Counts a sample of `nanoseconds`.
    @inline(__always)
    mutating func record(nanoseconds: Int64) {
        var index = 0
        while index < Self.bounds.count, nanoseconds > Self.bounds[index] { index += 1 }
        counts[index] &+= 1
    }

    /// Adds the samples of `other`.
    mutating func add(_ other: LatencyHistogram) {
        for index in counts.indices { counts[index] &+= other.counts[index] }
    }

    /// Sets every count to zero, keeping the storage.
    mutating func reset() {
        for index in counts.indices { counts[index] = 0 }
    }

    /// The samples counted since `earlier` (a reading of the same cumulative histogram).
    public func subtracting(_ earlier: LatencyHistogram) -> LatencyHistogram {
        var difference = self
        for index in counts.indices { difference.counts[index] = max(0, counts[index] - earlier.counts[index]) }
        return difference
    }

    /// The latency below which `fraction` (0 to 1) of the samples fall, interpolated linearly
    /// within its bucket as Prometheus' `histogram_quantile` does; the last bucket, which has
    /// no upper bound, answers its lower bound. `nil` without samples.
    public func quantile(_ fraction: Double) -> Duration? {
        let total = samples
        guard total > 0 else { return nil }
        let rank = min(max(fraction, 0), 1) * Double(total)
        var below = 0
        for (index, count) in counts.enumerated() {
            guard count > 0, Double(below + count) >= rank else {
                below += count
                continue
            }
            let lower = index == 0 ? 0 : Self.bounds[index - 1]
            guard index < Self.bounds.count else { return .nanoseconds(lower) }
            let share = (rank - Double(below)) / Double(count)
            return .nanoseconds(lower + Int64(Double(Self.bounds[index] - lower) * share))
        }
        return .nanoseconds(Self.bounds.last ?? 0)
    }
}
