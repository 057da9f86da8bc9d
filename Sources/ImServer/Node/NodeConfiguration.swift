public import ImCore

/// Everything a node needs to know that is not the backplane.
public struct NodeConfiguration: Sendable {
    /// This node's id; names its bus subject. Separate from its public address.
    public var nodeID: NodeID
    /// Where the public (WebSocket) listener binds.
    public var host: String
    /// The public listener's port; 0 picks a free one (tests).
    public var port: Int
    /// The WebSocket path clients connect to.
    public var path: String
    /// Bus subjects and their prefix.
    public var subjects: Subjects
    /// Limits that protect the node.
    public var limits: Limits
    /// How often the node pings each client.
    public var pingInterval: Duration
    /// How long a client may stay silent (no frame at all) before it is closed with 4009.
    public var idleTimeout: Duration
    /// How long the node's presence lease lasts without renewal.
    public var leaseTTL: Duration
    /// The shortest time between two flushes of one connection. A connection that was not
    /// flushed that recently is flushed at once; a busier one gathers what arrives meanwhile
    /// into one write (fewer syscalls for hot connections, at most this much extra latency
    /// for them). An overloaded event loop stretches it up to 4× (see ``FlushWheel``). Zero
    /// flushes every batch at once.
    public var flushInterval: Duration = .milliseconds(25)
    /// TLS for the public listener (`wss://`), or `nil` for plain `ws://`.
    public var tls: ReloadableTLS?
    /// Whether the public port also serves Server-Sent Events streams on ``path``
    /// (``EventStreamTransport``), the fallback for networks that block WebSockets.
    public var eventStreams = true

    /// A configuration with the documented defaults.
    public init(
        nodeID: NodeID = .random(),
        host: String = "127.0.0.1",
        port: Int = 6001,
        path: String = "/ws",
        subjects: Subjects = Subjects(),
        limits: Limits = Limits(),
        pingInterval: Duration = .seconds(25),
        idleTimeout: Duration = .seconds(60),
        leaseTTL: Duration = .seconds(15)
    ) {
        self.nodeID = nodeID
        self.host = host
        self.port = port
        self.path = path
        self.subjects = subjects
        self.limits = limits
        self.pingInterval = pingInterval
        self.idleTimeout = idleTimeout
        self.leaseTTL = leaseTTL
    }
}

/// The limits a node enforces; each has a default and a configuration key (docs/configuration.md).
public struct Limits: Sendable, Equatable {
    /// Largest inbound frame (after reassembly) in bytes; larger closes with 1009.
    public var maxFrameSize: Int = 64 * 1024
    /// Inbound messages per second per connection (sustained); more closes with 4029.
    public var messagesPerSecond: Int = 50
    /// Inbound messages a connection may send in a burst above the sustained rate.
    public var messageBurst: Int = 100
    /// Connections one user may hold on one node; more are refused with HTTP 429.
    public var connectionsPerUser: Int = 16
    /// Connections one node holds at most; more are refused with HTTP 503.
    public var connectionsPerNode: Int = 100_000
    /// WebSocket handshakes per second the node accepts; more are refused with HTTP 429.
    /// Charged only for tokens whose signature holds, so forged tokens cannot use it up.
    public var handshakesPerSecond: Int = 20_000
    /// WebSocket handshakes per second the node accepts from one IP address (bursts of a tenth
    /// of that, at least 10); more are refused with HTTP 429. Behind a proxy every client
    /// comes from the proxy's address: raise it there.
    public var handshakesPerSource: Int = 1_000
    /// Outbound bytes buffered per connection before it counts as not keeping up.
    public var writeBufferHighWater: Int = 256 * 1024
    /// Outbound bytes a connection may have queued beyond the high water mark; more closes with 4008.
    public var maxQueuedBytes: Int = 4 * 1024 * 1024
    /// How long a connection may stay unable to take writes before it is closed with 4008.
    public var slowConsumerTimeout: Duration = .seconds(10)
    /// How long a socket on the public port may take from accept to a completed upgrade (or
    /// stay open serving plain HTTP); then it is closed. Bounds what a client that never
    /// finishes its request (slowloris) can hold.
    public var handshakeTimeout: Duration = .seconds(10)
    /// Messages awaiting an `ack` remembered per connection (oldest forgotten first).
    public var pendingAcks: Int = 1024

    /// The default limits.
    public init() {}
}
