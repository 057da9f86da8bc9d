import Foundation
public import ImCore
public import Logging
public import NIOCore
import Synchronization

/// The node between its transports and its backplane, made of parts that each own one job:
///
/// - ``Gatekeeper``: admits handshakes (token, single use, limits), for every transport;
/// - ``ConnectionRegistrar``: registers connections in Presence and undoes that when they close;
/// - ``ChannelDirectory``: who is local and in which channels, alike in the shards and the bus
///   subscriptions;
/// - ``EnvelopeRouter``: routes what the bus delivers to the event-loop shards (``LoopHub``);
/// - ``CommandRunner``: helpers' join, leave and force offline, in order;
/// - ``ReceiptSender`` and ``PresenceAnnouncer``: what the node publishes back;
/// - ``BackplaneLink``: the lease, the link at start and the re-registration after an outage.
///
/// Transports hand it connections with ``open(_:on:output:)``; ``ImNode`` runs it.
public final class NodeCore: Sendable {
    /// How the node is configured.
    public let configuration: NodeConfiguration
    /// The bus and presence directory.
    public let backplane: Backplane
    /// Verifies connect tokens.
    public let tokens: ConnectTokens
    /// Counters.
    public let stats = NodeStats()
    /// Whether frames are also made in the compact encoding (some connection speaks it).
    let compactFrames = CompactFrameDemand()
    /// Checks every handshake of every transport: token, single use, limits.
    public let gatekeeper: Gatekeeper
    /// The node's logger (its metadata names the node), for transports too.
    public let logger: Logger
    let shards: [LoopHub]
    private let shardsByLoop: [ObjectIdentifier: LoopHub]
    let directory: ChannelDirectory
    let registrar: ConnectionRegistrar
    let receipts: ReceiptSender
    let commands: CommandRunner
    let router: EnvelopeRouter
    let link: BackplaneLink
    private let incarnation = randomHex(bytes: 4)
    private let counter = Atomic<UInt64>(0)

    /// A node core over `backplane` whose connections live on the loops of `group`.
    public init(
        configuration: NodeConfiguration, backplane: Backplane, tokens: ConnectTokens,
        group: any EventLoopGroup, logger: Logger
    ) {
        self.configuration = configuration
        self.backplane = backplane
        self.tokens = tokens
        self.logger = logger
        let flushInterval = TimeAmount.nanoseconds(configuration.flushInterval.nanoseconds)
        let traffic = stats.traffic
        let shards = group.makeIterator().map {
            LoopHub(eventLoop: $0, flushInterval: flushInterval, traffic: traffic)
        }
        self.shards = shards
        self.shardsByLoop = Dictionary(uniqueKeysWithValues: shards.map { (ObjectIdentifier($0.eventLoop), $0) })
        // The node's parts see the backplane through meters (round trips and errors per call).
        let meters = BackplaneMeters()
        let backplane = Backplane(
            bus: MeasuredBus(inner: backplane.bus, meters: meters),
            presence: MeasuredPresence(inner: backplane.presence, meters: meters))
        let gatekeeper = Gatekeeper(limits: configuration.limits, tokens: tokens, presence: backplane.presence)
        self.gatekeeper = gatekeeper
        let announcer = PresenceAnnouncer(bus: backplane.bus, subjects: configuration.subjects, logger: logger)
        let directory = ChannelDirectory(subjects: configuration.subjects)
        self.directory = directory
        let registrar = ConnectionRegistrar(
            presence: backplane.presence, directory: directory, announcer: announcer,
            nodeID: configuration.nodeID, stats: stats, compactFrames: compactFrames, logger: logger)
        self.registrar = registrar
        let receipts = ReceiptSender(bus: backplane.bus, subjects: configuration.subjects, logger: logger)
        self.receipts = receipts
        let commands = CommandRunner(directory: directory, backplane: backplane, logger: logger)
        self.commands = commands
        self.router = EnvelopeRouter(
            shards: shards, userShards: directory.userShards, receipts: receipts, commands: commands, stats: stats,
            compactFrames: compactFrames,
            logger: logger)
        self.link = BackplaneLink(
            backplane: backplane, configuration: configuration, gatekeeper: gatekeeper, announcer: announcer,
            registrar: registrar, directory: directory, commands: commands, shards: shards, stats: stats,
            logger: logger)
    }

    var nodeID: NodeID { configuration.nodeID }

    /// Whether the node has taken its lease and subscribed to its own subject: until then a
    /// connection could not be reached, so handshakes are refused and health is 503.
    var isLinked: Bool { gatekeeper.isOpen }

    /// Places for connections, reserved by handshakes (``Limits/connectionsPerNode`` and
    /// ``Limits/connectionsPerUser``).
    var slots: ConnectionSlots { gatekeeper.slots }

    /// The event loops connections live on: a transport opens each connection on one of them.
    public var eventLoops: [any EventLoop] { shards.map(\.eventLoop) }

    func shard(for loop: any EventLoop) -> LoopHub? { shardsByLoop[ObjectIdentifier(loop)] }

    /// Runs tasks on `loop` itself, if it is one of the node's: a transport runs a handshake's
    /// asynchronous part (``Gatekeeper/admit(token:)``) there, so the handshake never changes
    /// threads.
    public func taskExecutor(for loop: any EventLoop) -> (any TaskExecutor)? {
        shard(for: loop)?.taskExecutor
    }

    func makeConnectionID() -> ConnectionID {
        ConnectionID(incarnation: incarnation, number: counter.add(1, ordering: .relaxed).newValue)
    }

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
        registrar.opened(connection)
        return connection
    }

    /// Closes every connection with `code` and waits until they are closed.
    func closeAllConnections(code: CloseCode, grace: Duration) async {
        let perShard = shards.map { shard in shard.eventLoop.submit { shard.closeAll(code: code, grace: grace) } }
        for futures in perShard {
            guard let closing = try? await futures.get() else { continue }
            for future in closing { try? await future.get() }
        }
    }
}
