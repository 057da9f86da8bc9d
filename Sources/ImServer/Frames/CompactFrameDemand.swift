import Synchronization

/// How many of the node's connections speak the compact encoding (`imserver.v1.msgpack`,
/// docs/protocol.md §9). While any does, the node makes each frame in both encodings (once per
/// frame, shared by all receivers); while none does, only in JSON, so the encoding costs
/// nothing to nodes whose clients do not use it.
final class CompactFrameDemand: Sendable {
    private let connections = Atomic<Int>(0)

    /// Whether frames made now should carry the compact encoding too.
    var isWanted: Bool { connections.load(ordering: .relaxed) > 0 }

    /// A compact connection opened.
    func connectionOpened() { connections.add(1, ordering: .relaxed) }

    /// A compact connection closed.
    func connectionClosed() { connections.subtract(1, ordering: .relaxed) }
}
