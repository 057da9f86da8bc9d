import NIOCore
import Synchronization

/// The delivery latency of about the last ``span``, from readings of the node's cumulative
/// histogram: it keeps the histogram as it was at earlier readings (at most one a second) and
/// answers the samples counted since the latest of them that is at least ``span`` old. Kept by
/// whoever reads (the admin page once a second), nothing on the delivery path.
final class LatencyWindow: Sendable {
    /// How far back a reading looks, when readings that old were taken.
    let span: TimeAmount
    private let readings: Mutex<[(at: NIODeadline, histogram: LatencyHistogram)]>

    /// A window of `span` over a histogram that was empty at `start`.
    init(span: TimeAmount = .seconds(10), start: NIODeadline) {
        self.span = span
        self.readings = Mutex([(start, LatencyHistogram())])
    }

    /// The samples of `current` (the cumulative histogram at `now`) counted since the baseline,
    /// and how long ago that was: the latest earlier reading at least ``span`` old, or the
    /// oldest one kept (the node's start, on the first reading).
    func read(_ current: LatencyHistogram, now: NIODeadline) -> (histogram: LatencyHistogram, window: TimeAmount) {
        readings.withLock { readings in
            let baseline = readings.lastIndex { now - $0.at >= span } ?? 0
            readings.removeFirst(baseline)
            let (at, histogram) = readings[0]
            if let last = readings.last, now - last.at >= .seconds(1) { readings.append((now, current)) }
            return (current.subtracting(histogram), now - at)
        }
    }
}
