import ImCore
import Logging
public import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The node's public listener: HTTP/1 with a WebSocket upgrade on raw SwiftNIO.
///
/// Pipeline: NIO's HTTP/1 codec → ``WebSocketUpgradeHandler`` (token checked before the
/// upgrade; a refused upgrade is answered by ``PublicHTTPHandler`` with a status and reason),
/// which swaps it for NIO's WebSocket codec: frame decoder bounded by ``Limits/maxFrameSize`` →
/// ``WebSocketConnectionHandler`` (which checks frames against RFC 6455, joins fragments with a
/// ``ClientFrameAssembler`` and hands the connection to the node through the ``Transport`` seam:
/// ``NodeCore/open(_:on:output:)``, public API only).
/// A socket that has not upgraded within ``Limits/handshakeTimeout`` (its TLS handshake
/// included, with ``NodeConfiguration/tls``) is closed.
public final class WebSocketTransport: Transport {
    public let name = "websocket"
    private let core: NodeCore
    private let group: any EventLoopGroup
    private let routes: PublicRoutes
    private let bound = Mutex<(port: Int?, channel: (any Channel)?)>((nil, nil))
    private let ready = AsyncStream<Int?>.makeStream()

    /// A transport for `core` on the loops of `group`, also serving `routes` on its port.
    public init(core: NodeCore, group: any EventLoopGroup, routes: PublicRoutes) {
        self.core = core
        self.group = group
        self.routes = routes
    }

    /// The port the transport listens on, once bound (`nil` before).
    public var boundPort: Int? { bound.withLock { $0.port } }

    /// Waits until the listener is bound (or failed to bind); returns its port.
    public func waitUntilBound() async -> Int? {
        if let port = boundPort { return port }
        for await port in ready.stream { return port }
        return boundPort
    }

    public func run() async throws {
        let channel: any Channel
        do {
            channel = try await bind()
        } catch {
            willNotBind()
            throw error
        }
        let port = channel.localAddress?.port
        bound.withLock { $0 = (port, channel) }
        ready.continuation.yield(port)
        ready.continuation.finish()
        core.logger.info(
            "listening",
            metadata: [
                "address": "\(core.configuration.host):\(port ?? 0)",
                "path": "\(core.configuration.path)",
            ])
        try? await gracefulShutdown()
        try? await channel.close()
    }

    /// Tells ``waitUntilBound()`` that no listener is coming (the node will not run).
    func willNotBind() {
        ready.continuation.yield(nil)
        ready.continuation.finish()
    }

    /// Stops accepting new connections (existing ones stay open).
    public func stopAccepting() async {
        let channel = bound.withLock { $0.channel }
        try? await channel?.close()
    }

    private func bind() async throws -> any Channel {
        let core = self.core
        let routes = self.routes
        let limits = core.configuration.limits
        let waterMark = ChannelOptions.Types.WriteBufferWaterMark(
            low: max(limits.writeBufferHighWater / 4, 1), high: max(limits.writeBufferHighWater, 2))
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            // Up to 16 connections accepted per wake-up instead of NIO's 4: a burst of
            // connects (a reconnect storm, a load test) takes a quarter of the event-loop turns.
            // Measured: 1.14× the handshakes/s (median of 9 interleaved runs of 10,000).
            .serverChannelOption(.maxMessagesPerRead, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                // Set here, synchronously: the bootstrap's child options cost a future chain
                // per accepted socket. (NIOPosix's socket channels always have `syncOptions`.)
                if let options = channel.syncOptions {
                    do {
                        try options.setOption(.socketOption(.tcp_nodelay), value: 1)
                        try options.setOption(.writeBufferWaterMark, value: waterMark)
                        // Each channel keeps its last receive buffer for the next read: start small
                        // (an upgrade request fits; idle clients send nothing), grow for clients
                        // that send more.
                        try options.setOption(.recvAllocator, value: Self.receiveAllocator)
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                }
                return Self.initialize(channel, core: core, routes: routes)
            }
            .bind(host: core.configuration.host, port: core.configuration.port)
            .get()
    }

    private static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536)

    private static func initialize(
        _ channel: any Channel, core: NodeCore, routes: PublicRoutes
    ) -> EventLoopFuture<Void> {
        let loop = channel.eventLoop
        let state = NIOLoopBound(HandshakeState(), eventLoop: loop)
        let limits = core.configuration.limits
        // Cancelled by the upgrade. Not tied to closeFuture: a callback there would live as long as
        // the connection (memory per idle connection); a socket that closed by itself just lets
        // this run once, at most `handshakeTimeout` later, and do nothing.
        state.value.deadline = loop.scheduleTask(in: .nanoseconds(limits.handshakeTimeout.nanoseconds)) {
            // Admitted: the upgrade is finishing. Inactive: it closed without us.
            guard state.value.token == nil, channel.isActive else { return }
            core.stats.count(HandshakeRefusal(.requestTimeout, "no upgrade in time", cause: .timeout))
            channel.close(promise: nil)
        }
        return loop.makeCompletedFuture {
            let http = WebSocketUpgradeHandler.HTTPHandlers(
                pipelining: HTTPServerPipelineHandler(), errors: HTTPServerProtocolErrorHandler(),
                decoder: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
                encoder: HTTPResponseEncoder(), routes: PublicHTTPHandler(handshake: state.value, routes: routes))
            let upgrade = WebSocketUpgradeHandler(
                core: core, handshake: state.value, handlers: http)
            let sync = channel.pipeline.syncOperations
            if let tls = core.configuration.tls { try sync.addHandler(NIOSSLServerHandler(context: tls.current)) }
            try sync.addHandler(http.encoder)
            try sync.addHandler(http.decoder)
            try sync.addHandler(http.pipelining)
            try sync.addHandler(http.errors)
            try sync.addHandler(upgrade)
            try sync.addHandler(http.routes)
        }
    }
}
