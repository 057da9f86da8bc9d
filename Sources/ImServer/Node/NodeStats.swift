import CoreMetrics
import NIOCore
import Synchronization

/// Counters a node keeps for health, tests and metrics (swift-metrics: the executable exports
/// them in Prometheus format at `/metrics` of the server API).
///
/// Metrics: `imserver_connections` (gauge), `imserver_backplane_up` (gauge, 1 or 0),
/// `imserver_closes_total{code}`, `imserver_envelopes_total{kind}`,
/// `imserver_malformed_envelopes_total`, `imserver_handshakes_refused_total{status,reason}`,
/// `imserver_handshakes_accepted_total`, `imserver_bus_messages_in_total`, and those of
/// ``TrafficMeters`` and ``BackplaneMeters`` (docs/operations.md lists them all).
public final class NodeStats: Sendable {
    private let open = Atomic<Int>(0)
    private let connectionObjects = Atomic<Int>(0)
    private let closes = Mutex([CloseCode: Int]())
    private let connectionsGauge = Gauge(label: "imserver_connections")
    private let backplaneGauge = Gauge(label: "imserver_backplane_up")
    private let malformedCounter = Counter(label: "imserver_malformed_envelopes_total")
    private let envelopeCounters: [String: Counter]
    private let closeCounters = Mutex([CloseCode: Counter]())
    private let refusalCounters = Mutex([RefusalKey: (counter: Counter, count: Int)]())
    private let acceptedCounter = Counter(label: "imserver_handshakes_accepted_total")
    private let busInCounter = Counter(label: "imserver_bus_messages_in_total")
    private let accepted = Atomic<Int>(0)
    /// When the node was made, for its uptime.
    let started: NIODeadline
    /// Delivery latency over the recent past, for ``NodeCore/snapshot()``.
    let latencyWindow: LatencyWindow
    /// Frames, bytes, deliveries, flushes and delivery latency, counted per event loop.
    let traffic = TrafficMeters()

    init() {
        let started = NIODeadline.now()
        self.started = started
        latencyWindow = LatencyWindow(start: started)
        envelopeCounters = Dictionary(
            uniqueKeysWithValues: ["delivery", "channel", "broadcast", "receipt", "command", "batch"].map {
                ($0, Counter(label: "imserver_envelopes_total", dimensions: [("kind", $0)]))
            })
    }

    /// Connections open now.
    public var openConnections: Int { open.load(ordering: .relaxed) }
    /// Connections in memory (``NodeConnection`` objects, which their transport's handlers hold):
    /// equal to ``openConnections`` once closes have settled; more means closed connections are
    /// being kept alive (a leak).
    public var connectionsInMemory: Int { connectionObjects.load(ordering: .relaxed) }
    /// Server-initiated closes by code.
    public func closes(_ code: CloseCode) -> Int { closes.withLock { $0[code, default: 0] } }
    /// Sockets refused or closed before the upgrade, by HTTP status (408: handshake timeout).
    public func refusals(status: UInt) -> Int {
        refusalCounters.withLock { $0.filter { $0.key.status == status }.reduce(0) { $0 + $1.value.count } }
    }
    /// Sockets refused for `cause`.
    public func refusals(_ cause: HandshakeRefusal.Cause) -> Int {
        refusalCounters.withLock { $0.filter { $0.key.cause == cause }.reduce(0) { $0 + $1.value.count } }
    }
    /// Every server-initiated close so far, by code.
    public var closeCounts: [CloseCode: Int] { closes.withLock { $0 } }
    /// Every socket refused before the upgrade so far, by HTTP status.
    public var refusalCounts: [UInt: Int] {
        refusalCounters.withLock { counters in
            counters.reduce(into: [:]) { $0[$1.key.status, default: 0] += $1.value.count }
        }
    }
    /// Connections that became ready (handshakes accepted) since the node started.
    public var handshakesAccepted: Int { accepted.load(ordering: .relaxed) }

    func connectionOpened() {
        connectionsGauge.record(open.add(1, ordering: .relaxed).newValue)
    }

    func connectionObjectCreated() { connectionObjects.add(1, ordering: .relaxed) }

    func connectionObjectFreed() { connectionObjects.subtract(1, ordering: .relaxed) }

    func connectionClosed() {
        connectionsGauge.record(open.subtract(1, ordering: .relaxed).newValue)
    }

    /// Counts a connection that became ready (its handshake accepted).
    func countAccepted() {
        accepted.add(1, ordering: .relaxed)
        acceptedCounter.increment()
    }

    /// Counts a message that arrived on the node's bus subscription.
    func countBusMessage() { busInCounter.increment() }

    /// Counts a bus message that was not a valid envelope (dropped and logged).
    func countMalformed() {
        malformedCounter.increment()
    }

    func count(envelope kind: String) { envelopeCounters[kind]?.increment() }

    func count(close code: CloseCode) {
        let counter = closes.withLock { closes in
            closes[code, default: 0] += 1
            return closeCounters.withLock { counters in
                if let counter = counters[code] { return counter }
                let counter = Counter(label: "imserver_closes_total", dimensions: [("code", String(code.rawValue))])
                counters[code] = counter
                return counter
            }
        }
        counter.increment()
    }

    /// Counts a socket a transport refused or closed before it became a connection, by the
    /// HTTP status it was answered with (408 for a handshake that timed out) and its cause.
    public func count(_ refusal: HandshakeRefusal) {
        let key = RefusalKey(status: refusal.status.code, cause: refusal.cause)
        let counter = refusalCounters.withLock { counters in
            let counter =
                counters[key]?.counter
                ?? Counter(
                    label: "imserver_handshakes_refused_total",
                    dimensions: [("status", String(key.status)), ("reason", key.cause.rawValue)])
            counters[key] = (counter, (counters[key]?.count ?? 0) + 1)
            return counter
        }
        counter.increment()
    }

    private struct RefusalKey: Hashable {
        var status: UInt
        var cause: HandshakeRefusal.Cause
    }

    func record(backplaneUp: Bool) { backplaneGauge.record(backplaneUp ? 1 : 0) }
}
