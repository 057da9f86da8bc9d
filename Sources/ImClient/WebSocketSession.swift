import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// One WebSocket connection of an ``ImClient``: the upgrade, the frames it receives, and the
/// frames it sends.
final class WebSocketSession: Sendable {
    /// What the connection receives.
    enum Event: Sendable {
        /// A text frame.
        case text(ByteBuffer)
        /// The server's close frame.
        case close(code: UInt16?, reason: String)
    }

    private let channel: any Channel
    /// Every text and close frame, in order; ends when the socket closes.
    let events: AsyncStream<Event>

    private init(channel: any Channel, events: AsyncStream<Event>) {
        self.channel = channel
        self.events = events
    }

    /// Opens a WebSocket to `url` (`ws://` or `wss://`); throws ``ClientError`` when the URL is
    /// not one or the server refuses the upgrade.
    static func open(_ url: String, configuration: ClientConfiguration, group: any EventLoopGroup) async throws
        -> WebSocketSession
    {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "ws" || scheme == "wss", let host = components.host, !host.isEmpty
        else { throw ClientError.invalidURL(url) }
        let port = components.port ?? (scheme == "wss" ? 443 : 80)
        let target =
            (components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath)
            + (components.percentEncodedQuery.map { "?" + $0 } ?? "")
        var tls: NIOSSLContext?
        if scheme == "wss" {
            var settings = TLSConfiguration.makeClientConfiguration()
            if let authority = configuration.trustedAuthority { settings.trustRoots = .file(authority) }
            tls = try NIOSSLContext(configuration: settings)
        }
        let (events, continuation) = AsyncStream<Event>.makeStream()
        let maximumFrameSize = configuration.maximumFrameSize
        let serverName = host.first?.isNumber == true || host.contains(":") ? nil : host
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.nanoseconds(configuration.connectTimeout.nanoseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        let upgrade: EventLoopFuture<Upgrade> = try await bootstrap.connect(host: host, port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                if let tls {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: tls, serverHostname: serverName))
                }
                let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(
                    maxFrameSize: maximumFrameSize,
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOWebSocketFrameAggregator(
                                    minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1024,
                                    maxAccumulatedFrameSize: maximumFrameSize))
                            try channel.pipeline.syncOperations.addHandler(SessionHandler(events: continuation))
                            return Upgrade.upgraded(channel)
                        }
                    })
                var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
                head.headers.add(name: "Host", value: components.port.map { "\(host):\($0)" } ?? host)
                let upgrade = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
                    upgradeRequestHead: head, upgraders: [upgrader],
                    notUpgradingCompletionHandler: { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let refusal = RefusalHandler(promise: channel.eventLoop.makePromise())
                            try channel.pipeline.syncOperations.addHandler(refusal)
                            return Upgrade.refused(refusal.promise.futureResult)
                        }
                    })
                var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: upgrade)
                // The server's first frame (`ready`) may share a read with its 101 answer.
                pipeline.leftOverBytesStrategy = .forwardBytes
                return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                    configuration: pipeline)
            }
        }
        switch try await upgrade.get() {
        case .upgraded(let channel):
            return WebSocketSession(channel: channel, events: events)
        case .refused(let answer):
            continuation.finish()
            let (status, reason) = try await answer.get()
            throw ClientError.refused(status: status, reason: reason)
        }
    }

    /// Sends a text frame (masked, as clients must).
    func send(text: String) {
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text))
        channel.writeAndFlush(frame, promise: nil)
    }

    /// Sends a close frame with `code` and closes the socket once written.
    func close(code: UInt16) {
        var data = ByteBuffer()
        data.writeInteger(code)
        let channel = self.channel
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data))
            .whenComplete { _ in channel.close(promise: nil) }
    }
}

private enum Upgrade: Sendable {
    case upgraded(any Channel)
    case refused(EventLoopFuture<(Int, String)>)
}

/// Hands text and close frames to the session, answers pings, answers a close and ends.
private final class SessionHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let events: AsyncStream<WebSocketSession.Event>.Continuation

    init(events: AsyncStream<WebSocketSession.Event>.Continuation) { self.events = events }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            events.yield(.text(frame.unmaskedData))
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            var payload = frame.unmaskedData
            let code = payload.readInteger(as: UInt16.self)
            events.yield(.close(code: code, reason: payload.readString(length: payload.readableBytes) ?? ""))
            var reply = ByteBuffer()
            reply.writeInteger(code ?? 1000)
            let channel = context.channel
            context.writeAndFlush(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: reply))
            ).whenComplete { _ in channel.close(promise: nil) }
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        events.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Reads the answer to an upgrade the server refused: its status and body.
private final class RefusalHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: `status` and `body` are touched only on the channel's event loop.
    typealias InboundIn = HTTPClientResponsePart

    let promise: EventLoopPromise<(Int, String)>
    private var status = 0
    private var body = ""

    init(promise: EventLoopPromise<(Int, String)>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(let part): if body.utf8.count < 4096 { body += String(buffer: part) }
        case .end:
            promise.succeed((status, body.trimmingCharacters(in: .whitespacesAndNewlines)))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.succeed((status, body.trimmingCharacters(in: .whitespacesAndNewlines)))
    }
}

/// Why a connection attempt failed.
public enum ClientError: Error, Equatable, CustomStringConvertible {
    /// The URL provider returned something that is not a `ws://` or `wss://` URL.
    case invalidURL(String)
    /// The server answered the upgrade with this HTTP status and reason (401: the token was
    /// refused; 429, 503: try later).
    case refused(status: Int, reason: String)

    public var description: String {
        switch self {
        case .invalidURL(let url): "not a ws:// or wss:// URL: \(url.prefix(80))"
        case .refused(let status, let reason): "the server refused the connection with \(status): \(reason)"
        }
    }
}
