import ImCore
import Logging
import NIOCore

/// The node's standing in the backplane: its bus subscriber, its lease, and its connections in
/// Presence after an outage. It links the node at start (clearing what a previous life left,
/// taking the lease, subscribing the node's subjects, then opening the ``Gatekeeper``), renews
/// the lease and reaps expired nodes, and registers every live connection again once the
/// backplane is back.
final class BackplaneLink: Sendable {
    private let backplane: Backplane
    private let configuration: NodeConfiguration
    private let gatekeeper: Gatekeeper
    private let announcer: PresenceAnnouncer
    private let shards: [LoopHub]
    private let stats: NodeStats
    private let logger: Logger

    init(
        backplane: Backplane, configuration: NodeConfiguration, gatekeeper: Gatekeeper,
        announcer: PresenceAnnouncer, shards: [LoopHub], stats: NodeStats, logger: Logger
    ) {
        self.backplane = backplane
        self.configuration = configuration
        self.gatekeeper = gatekeeper
        self.announcer = announcer
        self.shards = shards
        self.stats = stats
        self.logger = logger
    }

    private var presence: any Presence { backplane.presence }

    /// A subscriber from the bus, retried with backoff (0.25 s doubling up to 5 s) while the
    /// bus refuses (it may, until it has connected); `nil` once cancelled.
    func makeSubscriber() async -> (any BusSubscriber)? {
        var delay = Duration.milliseconds(250)
        while !Task.isCancelled {
            do {
                return try await backplane.bus.makeSubscriber()
            } catch {
                logger.warning("bus cannot subscribe yet; retrying", metadata: ["error": "\(error)", "in": "\(delay)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
        return nil
    }

    /// Clears what a previous life of this node left in Presence, takes the lease, subscribes
    /// the node's own subjects and opens the gate for handshakes; while the backplane is
    /// unreachable it retries every second (the node listens meanwhile: `/health` says 503 and
    /// handshakes are refused with 503).
    func link(_ subscriber: any BusSubscriber) async {
        while !Task.isCancelled {
            do {
                for record in try await presence.removeNode(configuration.nodeID) {
                    await announcer.announce(.offline, record)
                }
                try await presence.renewLease(of: configuration.nodeID, ttl: configuration.leaseTTL)
                try await subscriber.subscribe([
                    configuration.subjects.node(configuration.nodeID),
                    configuration.subjects.broadcast,
                ])
                gatekeeper.open()
                return
            } catch {
                logger.warning("backplane not ready; retrying in 1 s", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Watches the backplane's health (both halves: an outage of the bus or of the presence
    /// directory counts); when it comes back up, renews the lease and registers every live
    /// connection again (announcing users others had reaped), so Presence is whole again
    /// without any client reconnecting.
    func watch() async {
        var wasUp = backplane.health.isUp
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .milliseconds(250))
            } catch {
                return
            }
            let health = backplane.health
            stats.record(backplaneUp: health.isUp)
            if health.isUp != wasUp {
                logger.log(level: health.isUp ? .notice : .warning, "backplane \(health)")
            }
            if health.isUp && !wasUp {
                wasUp = await reregisterConnections()
            } else {
                wasUp = health.isUp
            }
        }
    }

    /// Registers every live connection in Presence again (idempotent for those still there);
    /// `false` when it failed and should be tried again.
    func reregisterConnections() async -> Bool {
        do {
            try await presence.renewLease(of: configuration.nodeID, ttl: configuration.leaseTTL)
            var records: [ConnectionRecord] = []
            for shard in shards { records += (try? await shard.eventLoop.submit { shard.records }.get()) ?? [] }
            var restored = 0
            for record in records {
                guard let count = try await presence.connect(record) else { continue }
                restored += 1
                if count == 1 { await announcer.announce(.online, record) }
            }
            logger.notice(
                "re-registered connections", metadata: ["restored": "\(restored)", "live": "\(records.count)"])
            return true
        } catch {
            logger.warning("re-registration failed; retrying", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Renews the node's lease and reaps expired nodes (announcing their users offline) until
    /// cancelled.
    func maintainLease() async {
        let ttl = configuration.leaseTTL
        let interval = ttl / 3
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            do {
                try await presence.renewLease(of: configuration.nodeID, ttl: ttl)
                for record in try await presence.reapExpiredNodes() {
                    logger.info(
                        "reaped connection of an expired node",
                        metadata: ["client": "\(record.client)", "expiredNode": "\(record.node)"])
                    await announcer.announce(.offline, record)
                }
            } catch {
                logger.warning("lease renewal failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Removes the node from Presence and announces its users offline (at shutdown, once its
    /// connections closed).
    func unlink() async {
        for record in (try? await presence.removeNode(configuration.nodeID)) ?? [] {
            await announcer.announce(.offline, record)
        }
    }
}
