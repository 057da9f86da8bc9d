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
        self.transport = WebSocketTransport(core: core, group: group, routes: routes)
        self.otherTransports = transports(core)
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
        let presence = core.backplane.presence
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
            group.addTask { await core.runCommands() }
            group.addTask { await core.maintainLease() }
            group.addTask { await core.watchBackplane() }
            group.addTask {
                // The bus may refuse a subscriber until it has connected: the node listens
                // meanwhile (health 503) and keeps trying.
                guard let made = await self.makeSubscriber() else { return }
                subscriber.value.withLock { $0 = made }
                await withDiscardingTaskGroup { link in
                    link.addTask { await self.prepare(made) }
                    link.addTask { await core.subscriptions.run(applyingTo: made, logger: logger) }
                    link.addTask { for await message in made.messages { await core.route(message) } }
                }
            }
            try? await gracefulShutdown()
            logger.info("shutting down: closing connections")
            for heartbeat in heartbeats { heartbeat.cancel() }
            await transport.stopAccepting()
            for other in otherTransports { await other.stopAccepting() }
            await core.closeAllConnections(code: .goingAway, grace: .seconds(2))
            await core.waitForLifecycles()
            for record in (try? await presence.removeNode(configuration.nodeID)) ?? [] {
                await core.announce(.offline, record)
            }
            core.finishCommands()
            core.subscriptions.finish()
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

extension ImNode {
    /// A subscriber from the bus, retried with backoff (0.25 s doubling up to 5 s) while the
    /// bus refuses; `nil` once the node is cancelled.
    private func makeSubscriber() async -> (any BusSubscriber)? {
        var delay = Duration.milliseconds(250)
        while !Task.isCancelled {
            do {
                return try await core.backplane.bus.makeSubscriber()
            } catch {
                logger.warning("bus cannot subscribe yet; retrying", metadata: ["error": "\(error)", "in": "\(delay)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
        return nil
    }

    /// Clears what a previous life of this node left in Presence, takes the lease and
    /// subscribes; while the backplane is unreachable it retries every second (the node
    /// listens meanwhile: `/health` says 503 and handshakes are refused with 503).
    private func prepare(_ subscriber: any BusSubscriber) async {
        let configuration = core.configuration
        while !Task.isCancelled {
            do {
                for record in try await core.backplane.presence.removeNode(configuration.nodeID) {
                    await core.announce(.offline, record)
                }
                try await core.backplane.presence.renewLease(of: configuration.nodeID, ttl: configuration.leaseTTL)
                try await subscriber.subscribe([
                    configuration.subjects.node(configuration.nodeID),
                    configuration.subjects.broadcast,
                ])
                core.markLinked()
                return
            } catch {
                logger.warning("backplane not ready; retrying in 1 s", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}

extension NodeCore {
    /// Watches the backplane's health (both halves: an outage of the bus or of the presence
    /// directory counts); when it comes back up, renews the lease and registers every live
    /// connection again (announcing users others had reaped), so Presence is whole again
    /// without any client reconnecting.
    func watchBackplane() async {
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
            try await backplane.presence.renewLease(of: configuration.nodeID, ttl: configuration.leaseTTL)
            var records: [ConnectionRecord] = []
            for shard in shards { records += (try? await shard.eventLoop.submit { shard.records }.get()) ?? [] }
            var restored = 0
            for record in records {
                guard let count = try await backplane.presence.connect(record) else { continue }
                restored += 1
                if count == 1 { await announce(.online, record) }
            }
            logger.notice(
                "re-registered connections", metadata: ["restored": "\(restored)", "live": "\(records.count)"])
            return true
        } catch {
            logger.warning("re-registration failed; retrying", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Renews the node's lease and reaps expired nodes until cancelled.
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
                try await backplane.presence.renewLease(of: configuration.nodeID, ttl: ttl)
                for record in try await backplane.presence.reapExpiredNodes() {
                    logger.info(
                        "reaped connection of an expired node",
                        metadata: ["client": "\(record.client)", "expiredNode": "\(record.node)"])
                    await announce(.offline, record)
                }
            } catch {
                logger.warning("lease renewal failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Closes every connection with `code` and waits until they are closed.
    func closeAllConnections(code: CloseCode, grace: Duration) async {
        let perShard = shards.map { shard in shard.eventLoop.submit { shard.closeAll(code: code, grace: grace) } }
        for futures in perShard {
            guard let closing = try? await futures.get() else { continue }
            for future in closing { try? await future.get() }
        }
    }

    /// The body of `GET /health`: 200 when the backplane (bus and presence) is up and the node
    /// linked to it (lease taken, own subject subscribed), 503 otherwise.
    public func healthResponse() -> PublicResponse {
        let health = isLinked ? backplane.health : .down("node not yet subscribed to its subject")
        let body = """
            {"status":"\(health.isUp ? "up" : "down")","node":\(jsonQuoted(configuration.nodeID.rawValue)),\
            "connections":\(stats.openConnections),"backplane":\(jsonQuoted(health.description))}
            """
        return PublicResponse(
            status: health.isUp ? .ok : .serviceUnavailable, contentType: "application/json",
            text: body)
    }
}

/// `text` as a JSON string literal.
package func jsonQuoted(_ text: String) -> String {
    var buffer = ByteBuffer()
    buffer.writeJSONString(text)
    return String(buffer: buffer)
}
