import Synchronization

/// Counters a node keeps for health, metrics and tests.
public final class NodeStats: Sendable {
    private let open = Atomic<Int>(0)
    private let delivered = Atomic<Int>(0)
    private let malformed = Atomic<Int>(0)
    private let closes = Mutex([CloseCode: Int]())

    init() {}

    /// Connections open now.
    public var openConnections: Int { open.load(ordering: .relaxed) }
    /// Bus messages that were not valid envelopes (dropped and logged).
    public var malformedEnvelopes: Int { malformed.load(ordering: .relaxed) }
    /// Server-initiated closes by code.
    public func closes(_ code: CloseCode) -> Int { closes.withLock { $0[code, default: 0] } }
    /// Every server-initiated close count, by code.
    public var allCloses: [CloseCode: Int] { closes.withLock { $0 } }

    func connectionOpened() -> Int { open.add(1, ordering: .relaxed).newValue }
    func connectionClosed() { open.subtract(1, ordering: .relaxed) }
    func countMalformed() { malformed.add(1, ordering: .relaxed) }
    func count(close code: CloseCode) { closes.withLock { $0[code, default: 0] += 1 } }
}
