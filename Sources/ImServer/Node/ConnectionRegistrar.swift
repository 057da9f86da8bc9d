import ImCore
import Logging
import NIOCore
import Synchronization

/// Registers each connection when it opens (Presence, announcing a user's first connection;
/// the user's channels; the ``ChannelDirectory``; then `ready`) and undoes exactly what was done
/// when it closes, however the two overlap.
final class ConnectionRegistrar: Sendable {
    /// Where a connection's registration stands. Only what is under way holds a task: a
    /// finished task keeps its whole frame alive, so a registered connection keeps just the
    /// small ``Registration``.
    enum Lifecycle: Sendable {
        /// Boxed: every registered connection keeps a `Lifecycle`, which is as large as its
        /// largest case; this one's record lives only while registering.
        indirect case registering(Task<Registration, Never>, ConnectionRecord)
        case registered(Registration)
        case unregistering(Task<Void, Never>)
    }

    /// What a connection's registration achieved, so closing undoes exactly that.
    struct Registration: Sendable {
        var inPresence = false
        var attached = false
    }

    private let lifecycles = Mutex([ConnectionID: Lifecycle]())
    /// Set when a registration or unregistration failed: Presence may hold a connection the
    /// node does not have, or miss one it has, until ``BackplaneLink`` reconciles.
    private let unsure = Atomic<Bool>(false)
    /// Keeps ``BackplaneLink``'s reconciliations apart from single registrations.
    let gate = ReconciliationGate()
    private let presence: any Presence
    private let directory: ChannelDirectory
    private let announcer: PresenceAnnouncer
    private let nodeID: NodeID
    private let stats: NodeStats
    private let compactFrames: CompactFrameDemand
    private let logger: Logger

    init(
        presence: any Presence, directory: ChannelDirectory, announcer: PresenceAnnouncer, nodeID: NodeID,
        stats: NodeStats, compactFrames: CompactFrameDemand, logger: Logger
    ) {
        self.compactFrames = compactFrames
        self.presence = presence
        self.directory = directory
        self.announcer = announcer
        self.nodeID = nodeID
        self.stats = stats
        self.logger = logger
    }

    /// A connection was opened: register it, in the background.
    func opened(_ connection: NodeConnection) {
        stats.connectionOpened()
        let id = connection.record.connection
        lifecycles.withLock { lifecycles in
            // Created under the lock, so the task's own update below always comes after this one.
            let task = Task(executorPreference: connection.hub.taskExecutor) {
                let registration = await self.register(connection)
                self.lifecycles.withLock { lifecycles in
                    if case .registering? = lifecycles[id] { lifecycles[id] = .registered(registration) }
                }
                return registration
            }
            lifecycles[id] = .registering(task, connection.record)
        }
    }

    /// A connection closed: undo its registration once that finished.
    func closed(_ connection: NodeConnection) {
        stats.connectionClosed()
        let id = connection.record.connection
        let record = connection.record
        let shard = connection.hub
        lifecycles.withLock { lifecycles in
            let registration: @Sendable () async -> Registration
            switch lifecycles[id] {
            case nil, .unregistering?: return
            case .registered(let done)?: registration = { done }
            case .registering(let task, _)?: registration = { await task.value }
            }
            lifecycles[id] = .unregistering(
                Task(executorPreference: connection.hub.taskExecutor) {
                    await self.unregister(record, from: shard, registration: await registration())
                    self.lifecycles.withLock { lifecycles in
                        if case .unregistering? = lifecycles[id] { lifecycles[id] = nil }
                    }
                })
        }
    }

    private func register(_ connection: NodeConnection) async -> Registration {
        let record = connection.record
        let loop = connection.hub.eventLoop
        var registration = Registration()
        do {
            // `nil`: a reconciliation registered it first; it is in Presence all the same.
            let count = try await gate.write { try await presence.connect(record) }
            registration.inPresence = true
            if count == 1 { await announcer.announce(.online, record) }
            let channels = try await presence.channels(of: record.client)
            registration.attached = true
            await directory.attach(connection, channels: Set(channels))
            let ready = ServerFrame.ready(client: record.client, node: nodeID, compact: compactFrames.isWanted)
            loop.execute { connection.markReady(ready) }
            stats.countAccepted()
        } catch {
            logger.warning(
                "could not register connection", metadata: ["client": "\(record.client)", "error": "\(error)"])
            // The connect may have taken effect all the same (a timeout whose command ran).
            if !registration.inPresence { unsure.store(true, ordering: .relaxed) }
            loop.execute { connection.close(.tryAgainLater) }
        }
        return registration
    }

    private func unregister(_ record: ConnectionRecord, from shard: LoopHub, registration: Registration) async {
        if registration.attached { directory.detach(record.client, from: shard) }
        guard registration.inPresence else { return }
        do {
            if try await gate.write({ try await presence.disconnect(record) }) == 0 {
                await announcer.announce(.offline, record)
            }
        } catch {
            logger.warning(
                "could not unregister connection; the next reconciliation will",
                metadata: ["client": "\(record.client)", "error": "\(error)"])
            unsure.store(true, ordering: .relaxed)
        }
    }

    /// Whether a registration or unregistration failed since the last call (and clears that).
    func takeUnsure() -> Bool { unsure.exchange(false, ordering: .relaxed) }

    /// Notes that Presence may not match the node's connections (a reconciliation failed).
    func markUnsure() { unsure.store(true, ordering: .relaxed) }

    /// The connections whose registration is under way (they count as live: their own connect
    /// may come before or after a reconciliation, and either way they stay registered).
    var registeringRecords: [ConnectionRecord] {
        lifecycles.withLock { lifecycles in
            lifecycles.values.compactMap { lifecycle in
                if case .registering(_, let record) = lifecycle { record } else { nil }
            }
        }
    }

    /// How many connections are registering, registered and unregistering (for tests).
    var counts: (registering: Int, registered: Int, unregistering: Int) {
        lifecycles.withLock { lifecycles in
            lifecycles.values.reduce(into: (0, 0, 0)) { counts, lifecycle in
                switch lifecycle {
                case .registering: counts.0 += 1
                case .registered: counts.1 += 1
                case .unregistering: counts.2 += 1
                }
            }
        }
    }

    /// Waits until every registration and unregistration under way has finished.
    func waitUntilSettled() async {
        while true {
            let pending = lifecycles.withLock { lifecycles in
                lifecycles.values.compactMap { lifecycle -> (@Sendable () async -> Void)? in
                    switch lifecycle {
                    case .registering(let task, _): { _ = await task.value }
                    case .unregistering(let task): { await task.value }
                    case .registered: nil
                    }
                }
            }
            if pending.isEmpty { return }
            for wait in pending { await wait() }
        }
    }
}
