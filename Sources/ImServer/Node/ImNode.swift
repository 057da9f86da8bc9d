import Foundation
public import ImCore
public import Logging
public import NIOCore
public import NIOPosix
public import ServiceLifecycle
import Synchronization

/// An ImServer node: the WebSocket transport, the connection hub and the backplane link,
/// run as one `Service`. On graceful shutdown it stops accepting, closes every client with
/// 1001, unregisters them from Presence (announcing offline users) and returns.
public final class ImNode: Service {
    /// The node's state and router.
    public let core: NodeCore
    /// The public listener: HTTP routes and WebSocket connections.
    public let transport: WebSocketTransport
    /// The node's other transports (``Transport``), run beside ``transport``.
    public let otherTransports: [any Transport]
    private let logger: Logger
    /// Why `configuration` was refused, thrown by ``run()``.
    private let invalidConfiguration: ConfigurationError?

    /// A node with `configuration` on `backplane`, its connections on the loops of `group`;
    /// `routes` adds plain HTTP endpoints to the public port (health is always served);
    /// `transports` makes the node's other transports, given its core (they hand their
    /// connections to it with ``NodeCore/open(_:on:output:)``).
    /// A configuration out of range (``NodeConfiguration/validate()``) makes ``run()`` throw
    /// the ``ConfigurationError`` at once (the node is built with the defaults meanwhile).
    public init(
        configuration: NodeConfiguration, backplane: Backplane, tokens: ConnectTokens,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        routes: PublicRoutes = PublicRoutes(), logger: Logger = Logger(label: "imserver"),
        transports: (NodeCore) -> [any Transport] = { _ in [] }
    ) {
        var configuration = configuration
        do throws(ConfigurationError) {
            try configuration.validate()
            invalidConfiguration = nil
        } catch {
            invalidConfiguration = error
            configuration = NodeConfiguration(nodeID: configuration.nodeID)
        }
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.nodeID)"
        self.logger = logger
        let core = NodeCore(
            configuration: configuration, backplane: backplane, tokens: tokens, group: group,
            logger: logger)
        self.core = core
        var routes = routes
        routes.add(.GET, "/health") { _ in core.healthResponse() }
        var streams: [any Transport] = []
        if configuration.eventStreams {
            let transport = EventStreamTransport(core: core)
            transport.register(on: &routes)
            streams.append(transport)
        }
        self.transport = WebSocketTransport(core: core, group: group, routes: routes)
        self.otherTransports = streams + transports(core)
    }

    /// The node's id.
    public var nodeID: NodeID { core.configuration.nodeID }

    /// Whether the node has taken its lease and subscribed to its subject, so it admits
    /// connections (before that, handshakes are refused with 503 and `/health` says 503).
    public var isLinked: Bool { core.isLinked }

    public func run() async throws {
        if let invalidConfiguration {
            transport.willNotBind()
            throw invalidConfiguration
        }
        let configuration = core.configuration
        let heartbeats = core.shards.map { shard in
            let interval = TimeAmount.nanoseconds(configuration.pingInterval.nanoseconds)
            return shard.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                shard.heartbeat(idleTimeout: configuration.idleTimeout)
            }
        }
        let core = self.core
        let transport = self.transport
        let otherTransports = self.otherTransports
        let logger = self.logger
        let subscriber = SubscriberHolder()
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await transport.run() }
            for other in otherTransports { group.addTask { try await other.run() } }
            group.addTask { await core.commands.run() }
            group.addTask { await core.link.maintainLease() }
            group.addTask { await core.link.watch() }
            group.addTask {
                // The bus may refuse a subscriber until it has connected: the node listens
                // meanwhile (health 503) and keeps trying.
                guard let made = await core.link.makeSubscriber() else { return }
                subscriber.value.withLock { $0 = made }
                await withDiscardingTaskGroup { link in
                    link.addTask { await core.link.link(made) }
                    link.addTask { await core.directory.subscriptions.run(applyingTo: made, logger: logger) }
                    link.addTask { for await message in made.messages { await core.router.route(message) } }
                }
            }
            try? await gracefulShutdown()
            logger.info("shutting down: closing connections")
            for heartbeat in heartbeats { heartbeat.cancel() }
            await transport.stopAccepting()
            for other in otherTransports { await other.stopAccepting() }
            await core.closeAllConnections(code: .goingAway, grace: .seconds(2))
            await core.registrar.waitUntilSettled()
            await core.link.unlink()
            core.commands.finish()
            core.directory.subscriptions.finish()
            await subscriber.value.withLock({ $0 })?.close()
            group.cancelAll()
        }
        logger.info("stopped")
    }
}

/// The node's bus subscriber, once the bus gave one.
private final class SubscriberHolder: Sendable {
    let value = Mutex<(any BusSubscriber)?>(nil)
}
