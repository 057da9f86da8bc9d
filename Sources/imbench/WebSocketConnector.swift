import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// Opens benchmark WebSockets on raw SwiftNIO: an HTTP/1.1 upgrade request, then a
/// ``MemberHandler`` on the upgraded pipeline.
///
/// The upgradable pipeline forwards bytes that arrive with the `101` response
/// (`leftOverBytesStrategy = .forwardBytes`): the server may send `ready` in the same TCP
/// segment, and dropping it would leave the member waiting forever.
struct WebSocketConnector: Sendable {
    /// How one attempt ended before `ready`.
    enum Outcome: Sendable {
        /// Upgraded; `ready` completes with the `ready` frame's arrival time.
        case upgraded(any Channel, EventLoopFuture<UInt64>)
        /// The server answered without upgrading.
        case refused(Refusal)
    }

    /// A refused upgrade: the HTTP status and the one-line reason the server gave.
    struct Refusal: Sendable {
        var status: UInt
        var reason: String
    }

    /// What the upgrade pipeline yields: the response to a refusal arrives after it.
    private enum Upgrade: Sendable {
        case upgraded(any Channel, EventLoopFuture<UInt64>)
        case refused(EventLoopFuture<Refusal>)
    }

    let recorders: Recorders
    let group: any EventLoopGroup
    let readyTimeout: TimeAmount

    /// Connects to `endpoint` (its target carries the token), binding to `source` if given;
    /// the member tracks sequence numbers with `tracker`.
    func connect(to endpoint: Endpoint, from source: String?, tracker: SeqTracker) async throws -> Outcome {
        let recorders = self.recorders
        let readyTimeout = self.readyTimeout
        var bootstrap = ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(15))
        if let source {
            bootstrap = bootstrap
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(to: try SocketAddress(ipAddress: source, port: 0))
        }
        let host = endpoint.hostHeader
        let target = endpoint.target
        // An IP literal needs no resolver (and no Happy Eyeballs race) per connection.
        let address = try (try? SocketAddress(ipAddress: endpoint.host, port: endpoint.port))
            ?? SocketAddress.makeAddressResolvingHost(endpoint.host, port: endpoint.port)
        let upgrade: EventLoopFuture<Upgrade> = try await bootstrap.connect(to: address) {
            channel in
            channel.eventLoop.makeCompletedFuture {
                let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(
                    maxFrameSize: 1 << 20, enableAutomaticErrorHandling: false,
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            let ready = channel.eventLoop.makePromise(of: UInt64.self)
                            let handler = MemberHandler(recorder: recorders.recorder(for: channel.eventLoop),
                                                        tracker: tracker, ready: ready, readyTimeout: readyTimeout)
                            try channel.pipeline.syncOperations.addHandler(handler)
                            return Upgrade.upgraded(channel, ready.futureResult)
                        }
                    })
                var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
                head.headers.add(name: "Host", value: host)
                let configuration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
                    upgradeRequestHead: head, upgraders: [upgrader],
                    notUpgradingCompletionHandler: { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let promise = channel.eventLoop.makePromise(of: Refusal.self)
                            try channel.pipeline.syncOperations.addHandler(RefusalReader(promise: promise))
                            return Upgrade.refused(promise.futureResult)
                        }
                    })
                var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: configuration)
                pipeline.leftOverBytesStrategy = .forwardBytes
                return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: pipeline)
            }
        }
        switch try await upgrade.get() {
        case .upgraded(let channel, let ready): return .upgraded(channel, ready)
        case .refused(let refusal): return .refused(try await refusal.get())
        }
    }
}

/// Reads the response of a refused upgrade (status and one-line reason), then closes.
final class RefusalReader: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<WebSocketConnector.Refusal>
    private var status: UInt = 0
    private var body = ""

    init(promise: EventLoopPromise<WebSocketConnector.Refusal>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = head.status.code
        case .body(let part): body += String(buffer: part)
        case .end: context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let reason = body.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        promise.succeed(WebSocketConnector.Refusal(status: status, reason: reason))
        context.fireChannelInactive()
    }
}
