import CoreMetrics
import NIOCore
import Synchronization

/// The node's traffic metrics, shared by its event loops (each adds what it counted at most
/// once a second, see ``LoopMeters``).
///
/// `imserver_frames_out_total`, `imserver_bytes_out_total` (WebSocket framing included),
/// `imserver_deliveries_total` (message frames written, or queued for a client reading
/// slowly), `imserver_flushes_total` (socket writes), `imserver_frames_in_total` (client frames: `ack`, `ping`, WebSocket pings), and
/// `imserver_delivery_latency_seconds`: from a message's arrival at the node (or a frame being
/// queued, for frames no message caused) to the flush that hands it to the socket, sampled (at
/// most 1,000 flushes a second per loop).
final class TrafficMeters: Sendable {
    let framesOut = Counter(label: "imserver_frames_out_total")
    let bytesOut = Counter(label: "imserver_bytes_out_total")
    let deliveries = Counter(label: "imserver_deliveries_total")
    let flushes = Counter(label: "imserver_flushes_total")
    let framesIn = Counter(label: "imserver_frames_in_total")
    let latency = Timer(label: "imserver_delivery_latency_seconds")
    /// What the loops reported so far, readable (the counters above can only be written).
    private let counted = Mutex((totals: TrafficTotals(), latency: LatencyHistogram()))

    /// The totals the loops have reported so far.
    var totals: TrafficTotals { counted.withLock { $0.totals } }

    /// The delivery latency samples the loops have reported so far.
    var latencyHistogram: LatencyHistogram { counted.withLock { $0.latency } }

    /// Adds one loop's report: a lock taken once a second per loop at most, or when the node's
    /// figures are read (``NodeCore/snapshot()``).
    func add(_ totals: TrafficTotals, latency: LatencyHistogram) {
        counted.withLock { counted in
            counted.totals.add(totals)
            counted.latency.add(latency)
        }
    }
}

/// What one event loop counted since it last reported to ``TrafficMeters``. Loop-confined:
/// plain integers, no atomics on the delivery path.
final class LoopMeters {
    private let shared: TrafficMeters
    private var framesOut = 0
    private var bytesOut = 0
    private var deliveries = 0
    private var flushes = 0
    private var framesIn = 0
    private var samples = 0
    private var latency = LatencyHistogram()
    private var lastReport = NIODeadline.now()

    /// Flushes whose latency is recorded per loop and second, at most.
    static let samplesPerSecond = 1000

    init(shared: TrafficMeters) { self.shared = shared }

    /// Counts `count` connections' copies of `frame` (a fan-out counts once, not per write);
    /// `isMessage` counts them as deliveries too.
    @inline(__always)
    func wrote(_ frame: ServerFrame, count: Int = 1, isMessage: Bool = false) {
        guard count > 0 else { return }
        framesOut &+= count
        bytesOut &+= count &* frame.bytes.readableBytes
        if isMessage { deliveries &+= count }
    }

    /// Counts a frame received from a client.
    @inline(__always)
    func received() { framesIn &+= 1 }

    /// Counts a flush of frames the first of which arrived or was queued at `since`.
    @inline(__always)
    func flushed(since: NIODeadline, now: NIODeadline) {
        flushes &+= 1
        guard samples < Self.samplesPerSecond, since.uptimeNanoseconds > 0 else { return }
        samples += 1
        // Stamped on another thread of the same monotonic clock: never later, but clamp anyway.
        let nanoseconds = max(0, Int64(now.uptimeNanoseconds) &- Int64(since.uptimeNanoseconds))
        shared.latency.recordNanoseconds(nanoseconds)
        latency.record(nanoseconds: nanoseconds)
    }

    /// Reports to the shared metrics when a second has passed since the last report.
    func reportIfDue(now: NIODeadline) {
        guard now - lastReport >= .seconds(1) else { return }
        report(now: now)
    }

    /// Adds what was counted to the shared metrics and starts a new second of latency samples.
    func report(now: NIODeadline = .now()) {
        lastReport = now
        samples = 0
        publish()
    }

    /// Adds what was counted to the shared metrics (the sampling budget of the second is kept:
    /// reading the node's figures does not sample more).
    func publish() {
        let counted = TrafficTotals(
            framesIn: framesIn, framesOut: framesOut, deliveries: deliveries, bytesOut: bytesOut, flushes: flushes)
        if counted != TrafficTotals() || latency.samples > 0 { shared.add(counted, latency: latency) }
        latency.reset()
        if framesOut > 0 { shared.framesOut.increment(by: framesOut) }
        if bytesOut > 0 { shared.bytesOut.increment(by: bytesOut) }
        if deliveries > 0 { shared.deliveries.increment(by: deliveries) }
        if flushes > 0 { shared.flushes.increment(by: flushes) }
        if framesIn > 0 { shared.framesIn.increment(by: framesIn) }
        (framesOut, bytesOut, deliveries, flushes, framesIn) = (0, 0, 0, 0, 0)
    }
}
