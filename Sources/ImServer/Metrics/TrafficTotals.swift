/// A node's traffic since it started, as its event loops reported it (``TrafficMeters``): the
/// figures of the `imserver_frames_in_total`, `imserver_frames_out_total`,
/// `imserver_deliveries_total`, `imserver_bytes_out_total` and `imserver_flushes_total` metrics.
public struct TrafficTotals: Sendable, Equatable {
    /// Frames received from clients: `ack`, `ping` and WebSocket pings.
    public var framesIn = 0
    /// Frames written to clients: messages, receipts, `ready`, `pong`.
    public var framesOut = 0
    /// Message frames written to clients (a channel message to 1,000 local members counts 1,000).
    public var deliveries = 0
    /// The bytes of the frames written, WebSocket framing included.
    public var bytesOut = 0
    /// Socket writes (flushes).
    public var flushes = 0

    /// Totals of zero.
    public init() {}

    /// Totals of these figures.
    public init(framesIn: Int, framesOut: Int, deliveries: Int, bytesOut: Int, flushes: Int) {
        self.framesIn = framesIn
        self.framesOut = framesOut
        self.deliveries = deliveries
        self.bytesOut = bytesOut
        self.flushes = flushes
    }

    /// Adds `other`'s figures.
    mutating func add(_ other: TrafficTotals) {
        framesIn &+= other.framesIn
        framesOut &+= other.framesOut
        deliveries &+= other.deliveries
        bytesOut &+= other.bytesOut
        flushes &+= other.flushes
    }
}
