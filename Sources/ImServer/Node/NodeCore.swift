import Foundation
public import ImCore
public import Logging
public import NIOCore
import Synchronization

/// The node's shared state and its link to the backplane: registers connections in
/// Presence, keeps the local directory and bus subscriptions right, announces users, and
/// routes bus envelopes to the event-loop shards.
public final class NodeCore: Sendable {
    /// How the node is configured.
    public let configuration: NodeConfiguration
    /// The bus and presence directory.
    public let backplane: Backplane
    /// Verifies connect tokens.
    public let tokens: ConnectTokens
    /// Counters.
    public let stats = NodeStats()
    /// Checks every handshake of every transport: token, single use, limits.
    public let gatekeeper: Gatekeeper
    /// Places for connections, reserved by handshakes (``Limits/connectionsPerNode`` and
    /// ``Limits/connectionsPerUser``).
    var slots: ConnectionSlots { gatekeeper.slots }
    let logger: Logger
    let shards: [LoopHub]
    private let shardsByLoop: [ObjectIdentifier: LoopHub]
    private let directory = Mutex(LocalDirectory())
    let subscriptions: SubscriptionQueue
    private let lifecycles = Mutex([ConnectionID: Lifecycle]())
    private let recentAcks = Mutex(Set<String>())
    /// Commands from helpers (join, leave, force offline) waiting to run, oldest first. Bounded:
    /// beyond ``maximumQueuedCommands`` new ones are dropped and logged; their senders get no
    /// confirmation and give up after their command timeout.
    private let commands = AsyncStream<(NodeCommand, ReplyAddress?)>.makeStream(
        bufferingPolicy: .bufferingOldest(NodeCore.maximumQueuedCommands))
    /// The most commands waiting to run.
    static let maximumQueuedCommands = 65_536
    private let incarnation = randomHex(bytes: 4)
    private let counter = Atomic<UInt64>(0)

    /// Where a connection's registration stands. Only what is under way holds a task: a
    /// finished task keeps its whole frame alive, so a registered connection keeps just the
    /// small ``Registration``.
    enum Lifecycle: Sendable {
        case registering(Task<Registration, Never>)
        case registered(Registration)
        case unregistering(Task<Void, Never>)
    }

    /// What a connection's registration achieved, so closing undoes exactly that.
    struct Registration: Sendable {
        var inPresence = false
        var attached = false
    }

    /// A node core over `backplane` whose connections live on the loops of `group`.
    public init(
        configuration: NodeConfiguration, backplane: Backplane, tokens: ConnectTokens,
        group: any EventLoopGroup, logger: Logger
    ) {
        self.configuration = configuration
        self.backplane = backplane
        self.tokens = tokens
        self.logger = logger
        var shards: [LoopHub] = []
        let flushInterval = TimeAmount.nanoseconds(configuration.flushInterval.nanoseconds)
        for loop in group.makeIterator() { shards.append(LoopHub(eventLoop: loop, flushInterval: flushInterval)) }
        self.shards = shards
        self.shardsByLoop = Dictionary(uniqueKeysWithValues: shards.map { (ObjectIdentifier($0.eventLoop), $0) })
        self.subscriptions = SubscriptionQueue(subjects: configuration.subjects)
        self.gatekeeper = Gatekeeper(
            limits: configuration.limits, tokens: tokens, presence: backplane.presence)
    }

    var nodeID: NodeID { configuration.nodeID }

    /// Whether the node has taken its lease and subscribed to its own subject: until then a
    /// connection could not be reached, so handshakes are refused and health is 503.
    var isLinked: Bool { gatekeeper.isOpen }

    /// Marks the node linked to the backplane (see ``isLinked``): handshakes are let through.
    func markLinked() { gatekeeper.open() }
    var subjects: Subjects { configuration.subjects }

    /// The event loops connections live on: a transport opens each connection on one of them.
    public var eventLoops: [any EventLoop] { shards.map(\.eventLoop) }

    func shard(for loop: any EventLoop) -> LoopHub? { shardsByLoop[ObjectIdentifier(loop)] }

    func makeConnectionID() -> ConnectionID {
        ConnectionID(incarnation: incarnation, number: counter.add(1, ordering: .relaxed).newValue)
    }

    // MARK: Connection lifecycle

    /// Hands a connection the ``Gatekeeper`` admitted to the node, which registers it in
    /// Presence and sends it `ready`, then its messages, through `output`. Call it on `loop`,
    /// one of the node's event loops, where the connection lives from now on; the connection
    /// keeps the places its handshake reserved until ``NodeConnection/closed()``.
    ///
    /// Throws ``TransportError/notANodeLoop`` when `loop` is not one of the node's: the caller
    /// then releases the admission (``Gatekeeper/release(_:)``) and closes the connection.
    public func open(_ token: VerifiedToken, on loop: any EventLoop, output: any ConnectionOutput)
        throws(TransportError) -> NodeConnection
    {
        loop.preconditionInEventLoop()
        guard let shard = shard(for: loop) else { throw .notANodeLoop }
        let record = ConnectionRecord(
            client: token.client, node: nodeID, connection: makeConnectionID(), meta: token.meta)
        let connection = NodeConnection(record: record, hub: shard, core: self, output: output)
        opened(connection, on: loop)
        return connection
    }

    /// A connection was opened: register it, in the background.
    private func opened(_ connection: NodeConnection, on loop: any EventLoop) {
        stats.connectionOpened()
        let id = connection.record.connection
        lifecycles.withLock { lifecycles in
            // Created under the lock, so the task's own update below always comes after this one.
            let task = Task(executorPreference: connection.hub.taskExecutor) {
                let registration = await self.register(connection, on: loop)
                self.lifecycles.withLock { lifecycles in
                    if case .registering? = lifecycles[id] { lifecycles[id] = .registered(registration) }
                }
                return registration
            }
            lifecycles[id] = .registering(task)
        }
    }

    /// A connection closed: undo its registration once that finished.
    func closed(_ connection: NodeConnection) {
        stats.connectionClosed()
        let id = connection.record.connection
        let record = connection.record
        lifecycles.withLock { lifecycles in
            let registration: @Sendable () async -> Registration
            switch lifecycles[id] {
            case nil, .unregistering?: return
            case .registered(let done)?: registration = { done }
            case .registering(let task)?: registration = { await task.value }
            }
            lifecycles[id] = .unregistering(
                Task(executorPreference: connection.hub.taskExecutor) {
                    await self.unregister(record, registration: await registration())
                    self.lifecycles.withLock { lifecycles in
                        if case .unregistering? = lifecycles[id] { lifecycles[id] = nil }
                    }
                })
        }
    }

    private func register(_ connection: NodeConnection, on loop: any EventLoop) async -> Registration {
        let record = connection.record
        var registration = Registration()
        do {
            let count = try await backplane.presence.connect(record)
            registration.inPresence = count != nil
            if count == 1 { await announce(.online, record) }
            let channels = try await backplane.presence.channels(of: record.client)
            let shard = connection.hub
            let ticket = directory.withLock { directory in
                let change = directory.attach(record.client, channels: Set(channels))
                loop.execute { if !connection.isClosing { shard.add(connection) } }
                apply(change, to: record.client)
                return subscriptions.enqueue(change)
            }
            registration.attached = true
            await subscriptions.waitUntilApplied(ticket)
            let ready = ServerFrame.ready(client: record.client, node: nodeID)
            loop.execute { connection.markReady(ready) }
        } catch {
            logger.warning(
                "could not register connection", metadata: ["client": "\(record.client)", "error": "\(error)"])
            loop.execute { connection.close(.tryAgainLater) }
        }
        return registration
    }

    private func unregister(_ record: ConnectionRecord, registration: Registration) async {
        if registration.attached {
            directory.withLock { directory in
                let change = directory.detach(record.client)
                apply(change, to: record.client)
                _ = subscriptions.enqueue(change)
            }
        }
        guard registration.inPresence else { return }
        do {
            if try await backplane.presence.disconnect(record) == 0 { await announce(.offline, record) }
        } catch {
            logger.warning(
                "could not unregister connection; the lease reaper will",
                metadata: ["client": "\(record.client)", "error": "\(error)"])
        }
    }

    /// Hands `user`'s channel set to every shard (call while holding the directory lock, so
    /// shards see changes in the order they were decided).
    private func apply(_ change: LocalDirectory.Change, to user: ClientID) {
        guard let channels = change.channels else { return }
        for shard in shards {
            shard.eventLoop.execute { shard.setChannels(of: user, to: channels) }
        }
    }

    /// How many connections are registering, registered and unregistering (for tests).
    var lifecycleCounts: (registering: Int, registered: Int, unregistering: Int) {
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
    func waitForLifecycles() async {
        while true {
            let pending = lifecycles.withLock { lifecycles in
                lifecycles.values.compactMap { lifecycle -> (@Sendable () async -> Void)? in
                    switch lifecycle {
                    case .registering(let task): { _ = await task.value }
                    case .unregistering(let task): { await task.value }
                    case .registered: nil
                    }
                }
            }
            if pending.isEmpty { return }
            for wait in pending { await wait() }
        }
    }

    // MARK: Events and receipts

    func announce(_ kind: PresenceEvent.Kind, _ record: ConnectionRecord) async {
        let event = PresenceEvent(
            kind: kind, client: record.client, node: record.node, meta: record.meta,
            timestamp: Int64(Date().timeIntervalSince1970 * 1000))
        do {
            try await backplane.bus.publish(Envelope.event(event).encoded(), to: subjects.events)
        } catch {
            logger.warning(
                "could not publish \(kind) event", metadata: ["client": "\(record.client)", "error": "\(error)"])
        }
    }

    /// A client acknowledged a message: tell the sender, once per message and receiver.
    func acknowledged(_ messageID: String, by receiver: ClientID, route: AckRoute) {
        let key = messageID + "\u{0}" + receiver.rawValue
        let first = recentAcks.withLock { acks in
            if acks.count > 100_000 { acks.removeAll() }
            return acks.insert(key).inserted
        }
        guard first else { return }
        let receipt = Receipt(messageID: messageID, sender: route.sender, receiver: receiver, status: .acked)
        Task { await send([receipt], to: route.senderNodes) }
    }

    func send(_ receipts: [Receipt], to nodes: [NodeID]) async {
        guard !receipts.isEmpty, !nodes.isEmpty else { return }
        var batch: [BusMessage] = []
        for node in nodes {
            for receipt in receipts {
                batch.append(BusMessage(subject: subjects.node(node), payload: Envelope.receipt(receipt).encoded()))
            }
        }
        do {
            try await backplane.bus.publish(batch)
        } catch {
            logger.warning("could not publish receipts", metadata: ["error": "\(error)"])
        }
    }

    func count(close code: CloseCode) { stats.count(close: code) }

    // MARK: Routing

    /// Routes one bus message to the shards.
    func route(_ message: BusMessage) async {
        let envelope: Envelope
        do {
            envelope = try Envelope(decoding: message.payload)
        } catch {
            stats.countMalformed()
            logger.error(
                "dropping malformed envelope", metadata: ["subject": "\(message.subject)", "error": "\(error)"])
            return
        }
        await handle(envelope)
    }

    private func handle(_ envelope: Envelope) async {
        switch envelope {
        case .delivery(let delivery):
            stats.count(envelope: "delivery")
            await deliver(delivery)
        case .channel(let message):
            stats.count(envelope: "channel")
            guard let channel = message.channel else { return }
            fanOut(ServerFrame.message(message)) { shard, frame in shard.deliver(frame, toChannel: channel) }
        case .broadcast(let message):
            stats.count(envelope: "broadcast")
            fanOut(ServerFrame.message(message)) { shard, frame in shard.broadcast(frame) }
        case .receipt(let receipt):
            stats.count(envelope: "receipt")
            let frame = ServerFrame.receipt(receipt)
            let sender = [receipt.sender]
            for shard in shards { shard.eventLoop.execute { shard.deliver(frame, to: sender) } }
        case .command(let command, let reply):
            stats.count(envelope: "command")
            if case .dropped = commands.continuation.yield((command, reply)) {
                logger.warning("dropping a node command: \(Self.maximumQueuedCommands) are waiting already")
            }
        case .batch(let items):
            stats.count(envelope: "batch")
            await handle(batch: items)
        case .event, .reply:
            break
        }
    }

    /// Handles a batch in order; runs of deliveries without receipts go to each shard in one hop.
    private func handle(batch items: [Envelope]) async {
        var run: [(frame: ServerFrame, receivers: [ClientID])] = []
        for item in items {
            if case .delivery(let delivery) = item, !delivery.wantsReceipt {
                stats.count(envelope: "delivery")
                run.append((ServerFrame.message(delivery.message, wantsReceipt: false), delivery.receivers))
                continue
            }
            deliver(run)
            run.removeAll()
            await handle(item)
        }
        deliver(run)
    }

    private func deliver(_ run: [(frame: ServerFrame, receivers: [ClientID])]) {
        guard !run.isEmpty else { return }
        for shard in shards {
            shard.eventLoop.execute {
                for (frame, receivers) in run { shard.deliver(frame, to: receivers) }
            }
        }
    }

    /// Runs `body` on every shard's loop with a copy of `frame` of its own.
    private func fanOut(_ frame: ServerFrame, _ body: @escaping @Sendable (LoopHub, ServerFrame) -> Void) {
        for (index, shard) in shards.enumerated() {
            let local = index == 0 ? frame : frame.copy()
            shard.eventLoop.execute { body(shard, local) }
        }
    }

    private func deliver(_ delivery: Delivery) async {
        let frame = ServerFrame.message(delivery.message, wantsReceipt: delivery.wantsReceipt)
        let receivers = delivery.receivers
        guard delivery.wantsReceipt else {
            deliver([(frame, receivers)])
            return
        }
        let route = AckRoute(sender: delivery.message.sender, senderNodes: delivery.senderNodes)
        let reported = delivery.receiptFor
        let others = Set(receivers).subtracting(reported)
        let id = delivery.message.id
        for shard in shards {
            shard.eventLoop.execute {
                shard.deliver(frame, to: reported, awaitingAckOf: id, route: route)
                shard.deliver(frame, to: Array(others), awaitingAckOf: id, route: nil)
            }
        }
        let local = directory.withLock { directory in reported.map { directory.isLocal($0) } }
        let receipts = zip(reported, local).map { receiver, isLocal in
            Receipt(
                messageID: id, sender: delivery.message.sender, receiver: receiver,
                status: isLocal ? .delivered : .offline)
        }
        let nodes = delivery.senderNodes
        Task { await send(receipts, to: nodes) }
    }

    /// Executes node commands in arrival order, apart from deliveries, until ``finishCommands()``.
    func runCommands() async {
        for await (command, reply) in commands.stream {
            await execute(command)
            guard let reply else { continue }
            do {
                try await backplane.bus.publish(Envelope.reply(requestID: reply.requestID).encoded(), to: reply.subject)
            } catch {
                logger.warning("could not confirm command", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Ends ``runCommands()`` after the commands already queued.
    func finishCommands() { commands.continuation.finish() }

    /// Changes `user`'s channels in the directory, then in the shards and subscriptions, and
    /// waits until the subscriptions are in place.
    private func update(_ user: ClientID, _ change: (inout LocalDirectory) -> LocalDirectory.Change) async {
        let ticket = directory.withLock { directory in
            let decided = change(&directory)
            apply(decided, to: user)
            return subscriptions.enqueue(decided)
        }
        await subscriptions.waitUntilApplied(ticket)
    }

    private func execute(_ command: NodeCommand) async {
        switch command {
        case .join(let user, let channels):
            await update(user) { $0.join(user, channels: channels) }
        case .leave(let user, let channels):
            await update(user) { $0.leave(user, channels: channels) }
        case .forceOffline(let user):
            let closing = shards.map { shard in shard.eventLoop.submit { shard.close(user, code: .forcedOffline) } }
            _ = try? await EventLoopFuture.whenAllComplete(closing, on: shards[0].eventLoop).get()
        }
    }
}
