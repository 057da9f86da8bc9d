public import ImCore

/// A node's live figures at one moment (``NodeCore/snapshot()``): what its metrics count,
/// readable in-process, for the server API's `GET /v1/node/stats` and the admin page.
public struct NodeSnapshot: Sendable {
    /// The node's id.
    public var node: NodeID
    /// How long the node has been running.
    public var uptime: Duration
    /// The backplane's health, as the node sees it.
    public var backplane: BackplaneHealth
    /// Whether the node has taken its lease and subscribed to its subject (it admits connections).
    public var isLinked: Bool
    /// Connections open now.
    public var openConnections: Int
    /// Connections that became ready since the node started.
    public var handshakesAccepted: Int
    /// Sockets refused or closed before they became a connection, by HTTP status.
    public var handshakesRefused: [UInt: Int]
    /// Connections the node closed, by close code.
    public var closes: [CloseCode: Int]
    /// Frames, deliveries and bytes since the node started.
    public var traffic: TrafficTotals
    /// Delivery latency over the recent past.
    public var latency: LatencySummary
}

/// Delivery latency over a recent window (see `imserver_delivery_latency_seconds`): estimated
/// from histogram buckets (250 µs to 5 s, ``LatencyHistogram/bounds``), interpolated within one.
public struct LatencySummary: Sendable {
    /// How far back the figures reach: to the latest earlier reading at least 10 s old, or to
    /// the node's start when there is none (10 to 11 s when read every second).
    public var window: Duration
    /// How many latency samples fell in the window (flushes, sampled: at most 1,000 a second
    /// per event loop).
    public var samples: Int
    /// The median, or `nil` without samples.
    public var p50: Duration?
    /// The 99th percentile, or `nil` without samples.
    public var p99: Duration?

    /// The summary of `histogram`, the samples of `window`.
    public init(_ histogram: LatencyHistogram, window: Duration) {
        self.window = window
        self.samples = histogram.samples
        self.p50 = histogram.quantile(0.5)
        self.p99 = histogram.quantile(0.99)
    }
}
