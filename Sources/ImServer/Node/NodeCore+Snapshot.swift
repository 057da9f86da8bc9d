import NIOCore

extension NodeCore {
    /// The node's live figures: connections, handshakes, closes, traffic totals and recent
    /// delivery latency (``NodeSnapshot``), read from the counters its metrics come from.
    ///
    /// The event loops add their traffic counts to the node's totals once a second while
    /// traffic flows, and at every heartbeat when it stops; this asks each loop to add what it
    /// counted so far first (one task per loop per call), so the totals are current. Nothing
    /// is added to the delivery path.
    public func snapshot() async -> NodeSnapshot {
        let published = shards.map { shard in shard.eventLoop.submit { shard.meters.publish() } }
        for future in published { try? await future.get() }
        let now = NIODeadline.now()
        let traffic = stats.traffic
        let (latency, window) = stats.latencyWindow.read(traffic.latencyHistogram, now: now)
        return NodeSnapshot(
            node: configuration.nodeID, uptime: .nanoseconds((now - stats.started).nanoseconds),
            backplane: backplane.health, isLinked: isLinked, openConnections: stats.openConnections,
            handshakesAccepted: stats.handshakesAccepted, handshakesRefused: stats.refusalCounts,
            closes: stats.closeCounts, traffic: traffic.totals,
            latency: LatencySummary(latency, window: .nanoseconds(window.nanoseconds)))
    }
}
