import ImCore
import Logging
import NIOCore

/// The node's standing in the backplane: its bus subscriber, its lease, and its connections in
/// Presence. It links the node at start (clearing what a previous life left, taking the lease,
/// subscribing the node's subjects, then opening the ``Gatekeeper``), renews the lease and reaps
/// expired nodes, and reconciles Presence with the node's live connections whenever it cannot
/// trust that they match:
///
/// - the lease had run out at a renewal (the node was paused past it and reaped, or the backend
///   lost its data): within one renewal (a third of the lease) every live connection is
///   registered again, and local users' channels are reloaded from Presence;
/// - a registration or unregistration failed (a timeout whose command may have run, a backend
///   blip): at the next renewal, stale entries are removed and missing ones added;
/// - the backplane came back after an outage: at once.
final class BackplaneLink: Sendable {
    private let backplane: Backplane
    private let configuration: NodeConfiguration
    private let gatekeeper: Gatekeeper
    private let announcer: PresenceAnnouncer
    private let registrar: ConnectionRegistrar
    private let directory: ChannelDirectory
    private let commands: CommandRunner
    private let shards: [LoopHub]
    private let stats: NodeStats
    private let logger: Logger

    init(
        backplane: Backplane, configuration: NodeConfiguration, gatekeeper: Gatekeeper,
        announcer: PresenceAnnouncer, registrar: ConnectionRegistrar, directory: ChannelDirectory,
        commands: CommandRunner, shards: [LoopHub], stats: NodeStats, logger: Logger
    ) {
        self.backplane = backplane
        self.configuration = configuration
        self.gatekeeper = gatekeeper
        self.announcer = announcer
        self.registrar = registrar
        self.directory = directory
        self.commands = commands
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
                _ = try await presence.renewLease(of: configuration.nodeID, ttl: configuration.leaseTTL)
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
    /// directory counts); when it comes back up, renews the lease and reconciles, so Presence
    /// is whole again without any client reconnecting.
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
                wasUp = await renewAndReconcile(always: true)
            } else {
                wasUp = health.isUp
            }
        }
    }

    /// Renews the node's lease, reconciling when it had run out (or `always`, or after a failed
    /// registration); `false` when that failed and should be tried again.
    func renewAndReconcile(always: Bool = false) async -> Bool {
        do {
            let wasLive = try await presence.renewLease(of: configuration.nodeID, ttl: configuration.leaseTTL)
            let unsure = registrar.takeUnsure()
            guard always || !wasLive || unsure else { return true }
            if !wasLive {
                logger.warning("the node's lease had run out (paused, reaped, or the backend lost its data)")
                // The backend may have lost memberships too (or they changed while the node was
                // gone): queued before the users are registered again, so once they are listed,
                // a join or leave sent to them comes after the reload.
                commands.reloadChannels(of: directory.localUsers)
            }
            try await reconcile()
            return true
        } catch {
            registrar.markUnsure()
            logger.warning("lease renewal or reconciliation failed; retrying", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Makes Presence hold exactly the node's live connections (``Presence/replaceConnections(of:with:)``)
    /// and announces whom that brought online or took offline. It holds the registrar's
    /// ``ReconciliationGate`` meanwhile, so no connection opens or closes in Presence between
    /// the snapshot and the replacement.
    func reconcile() async throws {
        let (live, changes) = try await registrar.gate.reconcile {
            let live = await liveRecords()
            return (live, try await presence.replaceConnections(of: configuration.nodeID, with: live))
        }
        for record in changes.offline { await announcer.announce(.offline, record) }
        for record in changes.online { await announcer.announce(.online, record) }
        logger.notice(
            "reconciled connections with presence",
            metadata: [
                "live": "\(live.count)", "restored": "\(changes.online.count)",
                "removed": "\(changes.offline.count)",
            ])
    }

    /// Every connection the node has or is registering.
    private func liveRecords() async -> [ConnectionRecord] {
        var records = registrar.registeringRecords
        for shard in shards { records += (try? await shard.eventLoop.submit { shard.records }.get()) ?? [] }
        return records
    }

    /// Renews the node's lease (reconciling when needed, see ``renewAndReconcile(always:)``) and
    /// reaps expired nodes (announcing their users offline) until cancelled.
    func maintainLease() async {
        let interval = configuration.leaseTTL / 3
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            guard await renewAndReconcile() else { continue }
            do {
                for record in try await presence.reapExpiredNodes() {
                    logger.info(
                        "reaped connection of an expired node",
                        metadata: ["client": "\(record.client)", "expiredNode": "\(record.node)"])
                    await announcer.announce(.offline, record)
                }
            } catch {
                logger.warning("reaping expired nodes failed", metadata: ["error": "\(error)"])
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
