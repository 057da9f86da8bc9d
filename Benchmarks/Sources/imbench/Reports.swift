/// What minting connect URLs achieved.
struct MintReport: Sendable, Codable {
    var outcome = BatchOutcome()
    /// Monotonic time of the first and last mint (ns).
    var start: UInt64 = .max
    var end: UInt64 = 0

    mutating func merge(_ other: MintReport) {
        outcome.merge(other.outcome)
        start = min(start, other.start)
        end = max(end, other.end)
    }
}

/// What opening the WebSockets achieved.
struct ConnectReport: Sendable, Codable {
    /// Connections that received `ready`.
    var ok = 0
    /// Connections that did not, by reason.
    var failures = FailureReasons()
    /// Monotonic time the first connect started (ns).
    var firstStart: UInt64 = .max
    /// Monotonic time the last `ready` arrived (ns).
    var lastReady: UInt64 = 0

    var failed: Int { failures.total }

    /// Handshakes per second, first connect start to last `ready`.
    var handshakesPerSecond: Double {
        let seconds = MonotonicClock.seconds(from: firstStart, to: lastReady)
        return seconds > 0 ? Double(ok) / seconds : 0
    }

    mutating func merge(_ other: ConnectReport) {
        ok += other.ok
        failures.merge(other.failures)
        firstStart = min(firstStart, other.firstStart)
        lastReady = max(lastReady, other.lastReady)
    }
}

/// Counters at one moment, for the progress line.
struct Snapshot: Sendable, Codable {
    var minted = 0
    var open = 0
    var failed = 0
    var dropped = 0
    var delivered = 0
    /// p99 of the latencies since the previous snapshot, in microseconds.
    var intervalP99: UInt64 = 0

    mutating func merge(_ other: Snapshot) {
        minted += other.minted
        open += other.open
        failed += other.failed
        dropped += other.dropped
        delivered += other.delivered
        intervalP99 = max(intervalP99, other.intervalP99)
    }
}

/// What the members received, checked against what was sent.
struct DeliveryReport: Sendable, Codable {
    /// Members that were connected at the end of the run or dropped during it.
    var members = 0
    /// Message frames received.
    var delivered = 0
    /// Expected sequence numbers never received (summed over members).
    var lost = 0
    /// Extra copies of sequence numbers already received.
    var duplicates = 0
    /// Sequence numbers received by a member they were not sent to.
    var misrouted = 0
    /// Members whose connection the server closed during the run.
    var dropped = 0
    /// Monotonic time the last message arrived (ns).
    var lastDelivery: UInt64 = 0
    /// Every latency, in microseconds.
    var histogram = SparseHistogram()

    /// Adds `other`'s counts; histograms are merged by the caller (see ``DeliveryTotals``).
    mutating func mergeCounts(_ other: DeliveryReport) {
        members += other.members
        delivered += other.delivered
        lost += other.lost
        duplicates += other.duplicates
        misrouted += other.misrouted
        dropped += other.dropped
        lastDelivery = max(lastDelivery, other.lastDelivery)
    }

    /// Reports merged, histograms included.
    static func merged(_ reports: [DeliveryReport]) -> DeliveryReport {
        var total = DeliveryReport()
        var histogram = LatencyHistogram.make()
        var maxRecorded: UInt64 = 0
        for report in reports {
            total.mergeCounts(report)
            report.histogram.add(to: &histogram)
            maxRecorded = max(maxRecorded, report.histogram.maxRecorded)
        }
        total.histogram = SparseHistogram(histogram)
        total.histogram.maxRecorded = maxRecorded
        return total
    }
}
