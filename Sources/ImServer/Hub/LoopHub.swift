import ImCore
import NIOCore

/// The connections of one event loop, indexed by user and by channel, and their fan-out.
///
/// Every method runs on ``eventLoop`` (the node hops there once per message), so the index
/// needs no lock. Writes are collected and flushed once per batch: the first write in a loop
/// tick schedules one flush pass that runs after every delivery already queued. A connection
/// flushed less than the flush interval ago waits for its slot on the ``FlushWheel`` instead,
/// so a hot connection gets several messages per syscall while a quiet one is flushed at once.
final class LoopHub: @unchecked Sendable {
    /// The loop that owns this shard.
    let eventLoop: any EventLoop

    private var connections: [ClientID: [NodeConnection]] = [:]
    private var members: [String: Set<ClientID>] = [:]
    private var channelsOf: [ClientID: Set<String>] = [:]
    /// Each channel's local connections as one array, built on the channel's first delivery and
    /// dropped when its membership or a member's connections change: a fan-out then walks an
    /// array instead of hashing every member's id.
    private var channelConnections: [String: [NodeConnection]] = [:]
    private var needsFlush: [NodeConnection] = []
    private var flushScheduled = false
    /// Paces hot connections' flushes; `nil` when every connection is flushed at once.
    let wheel: FlushWheel<NodeConnection>?
    /// Runs this loop's connections' handshake and registration tasks on the loop itself.
    let taskExecutor: EventLoopTaskExecutor
    /// This loop's traffic counts, reported to the node's metrics once a second.
    let meters: LoopMeters
    /// When the message being delivered arrived at the node (set while a delivery runs).
    private(set) var arrival: NIODeadline?

    /// A shard for `eventLoop`; a connection is flushed at most once per `flushInterval`
    /// (stretched under load, see ``FlushWheel``).
    init(eventLoop: any EventLoop, flushInterval: TimeAmount = .zero, traffic: TrafficMeters = TrafficMeters()) {
        self.eventLoop = eventLoop
        self.wheel = FlushWheel(eventLoop: eventLoop, interval: flushInterval)
        self.taskExecutor = EventLoopTaskExecutor(eventLoop)
        self.meters = LoopMeters(shared: traffic)
    }

    /// Runs `body` (deliveries) as caused by a message that arrived at the node at `arrival`,
    /// so the frames' latency is measured from then.
    func deliveries(arrivedAt arrival: NIODeadline, _ body: () -> Void) {
        self.arrival = arrival
        body()
        self.arrival = nil
    }

    /// A flush phase for a new connection.
    func makeFlushPhase() -> Int { wheel?.makePhase() ?? 0 }

    /// How many connections this loop holds.
    private(set) var connectionCount = 0

    // MARK: Registry

    func add(_ connection: NodeConnection) {
        eventLoop.assertInEventLoop()
        connections[connection.client, default: []].append(connection)
        connectionCount += 1
        forgetConnections(ofChannelsOf: connection.client)
    }

    func remove(_ connection: NodeConnection) {
        eventLoop.assertInEventLoop()
        guard var list = connections[connection.client],
            let index = list.firstIndex(where: { $0 === connection })
        else { return }
        list.remove(at: index)
        connectionCount -= 1
        forgetConnections(ofChannelsOf: connection.client)
        if list.isEmpty {
            connections[connection.client] = nil
            setChannels(of: connection.client, to: [])
        } else {
            connections[connection.client] = list
        }
    }

    /// Sets the channels `user` belongs to, if the user has connections on this loop.
    func setChannels(of user: ClientID, to channels: Set<String>) {
        eventLoop.assertInEventLoop()
        let current = channelsOf[user] ?? []
        let target = connections[user] == nil ? [] : channels
        for channel in current.subtracting(target) {
            members[channel]?.remove(user)
            if members[channel]?.isEmpty == true { members[channel] = nil }
            channelConnections[channel] = nil
        }
        for channel in target.subtracting(current) {
            members[channel, default: []].insert(user)
            channelConnections[channel] = nil
        }
        channelsOf[user] = target.isEmpty ? nil : target
    }

    // MARK: Fan-out

    /// Writes `frame` to every connection of each of `users` on this loop; `isMessage` says
    /// whether it is a message (counted as deliveries) or a receipt.
    func deliver(_ frame: ServerFrame, to users: [ClientID], isMessage: Bool = true) {
        var written = 0
        for user in users {
            guard let list = connections[user] else { continue }
            for connection in list where connection.write(frame) { written &+= 1 }
        }
        meters.wrote(frame, count: written, isMessage: isMessage)
    }

    /// Writes a frame that asks for an `ack` to every connection of each of `users`; `route`
    /// is where the `acked` receipt goes, `nil` when another node reports it. Returns the users
    /// at least one of whose connections took the frame (not closing).
    @discardableResult
    func deliver(_ frame: ServerFrame, to users: [ClientID], awaitingAckOf messageID: String, route: AckRoute?)
        -> [ClientID]
    {
        var delivered: [ClientID] = []
        var written = 0
        for user in users {
            guard let list = connections[user] else { continue }
            var took = false
            for connection in list where connection.write(frame, awaitingAckOf: messageID, route: route) {
                took = true
                written &+= 1
            }
            if took { delivered.append(user) }
        }
        meters.wrote(frame, count: written, isMessage: true)
        return delivered
    }

    /// Writes `frame` to every connection of every local member of `channel`.
    func deliver(_ frame: ServerFrame, toChannel channel: String) {
        let list = connections(of: channel)
        for connection in list { connection.write(frame) }
        // Counted per fan-out: a closing member's refused copy counts too (rare).
        meters.wrote(frame, count: list.count, isMessage: true)
    }

    private func connections(of channel: String) -> [NodeConnection] {
        if let cached = channelConnections[channel] { return cached }
        guard let users = members[channel] else { return [] }
        var list: [NodeConnection] = []
        list.reserveCapacity(users.count)
        for user in users { list += connections[user] ?? [] }
        channelConnections[channel] = list
        return list
    }

    private func forgetConnections(ofChannelsOf user: ClientID) {
        guard let channels = channelsOf[user] else { return }
        for channel in channels { channelConnections[channel] = nil }
    }

    /// Writes `frame` to every connection on this loop.
    func broadcast(_ frame: ServerFrame) {
        for list in connections.values {
            for connection in list { connection.write(frame) }
        }
        meters.wrote(frame, count: connectionCount, isMessage: true)
    }

    /// Every connection on this loop, as Presence records.
    var records: [ConnectionRecord] {
        connections.values.flatMap { $0.map(\.record) }
    }

    /// Queues `connection` for the next flush pass.
    func markNeedsFlush(_ connection: NodeConnection) {
        guard !connection.needsFlush else { return }
        connection.needsFlush = true
        connection.queuedSince = arrival ?? .now()
        needsFlush.append(connection)
        guard !flushScheduled else { return }
        flushScheduled = true
        eventLoop.execute { self.flushAll() }
    }

    private func flushAll() {
        flushScheduled = false
        let now = NIODeadline.now()
        var index = 0
        // By index: a connection marked while this pass runs is still seen.
        while index < needsFlush.count {
            let connection = needsFlush[index]
            index += 1
            if let wheel, !wheel.isDue(lastFlushed: connection.lastFlush, now: now) {
                // Stays marked, so its further writes join the flush in its slot.
                wheel.schedule(connection, now: now)
            } else {
                connection.flush(at: now)
            }
        }
        needsFlush.removeAll(keepingCapacity: true)
        meters.reportIfDue(now: now)
    }

    // MARK: Control

    /// Closes every connection of `user` on this loop; returns how many.
    @discardableResult
    func close(_ user: ClientID, code: CloseCode) -> Int {
        guard let list = connections[user] else { return 0 }
        for connection in list { connection.close(code) }
        return list.count
    }

    /// Closes every connection on this loop; returns futures that complete as they close.
    func closeAll(code: CloseCode, grace: Duration) -> [EventLoopFuture<Void>] {
        var closed: [EventLoopFuture<Void>] = []
        for list in connections.values {
            for connection in list {
                connection.close(code, grace: grace)
                if let future = connection.closeFuture { closed.append(future) }
            }
        }
        return closed
    }

    /// Pings every connection, and closes those silent for longer than `idleTimeout`.
    func heartbeat(idleTimeout: Duration) {
        let now = NIODeadline.now()
        meters.report(now: now)
        let limit = TimeAmount.nanoseconds(idleTimeout.nanoseconds)
        for list in connections.values {
            for connection in list {
                if now - connection.lastSeen > limit {
                    connection.close(.idleTimeout)
                } else {
                    connection.ping()
                }
            }
        }
    }
}
