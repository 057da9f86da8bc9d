import Foundation
package import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// Opens WebSocket connections: TCP (and TLS for `wss://`), the HTTP upgrade, and the answer
/// to an upgrade the server refused. Shared by ``ImClient`` and the tests' raw client.
package enum WebSocketDialer {
    /// How to dial.
    package struct Settings: Sendable {
        /// For `wss://`: a certificate authority (PEM file) to trust instead of the system's.
        package var trustedAuthority: String?
        /// The largest frame accepted.
        package var maximumFrameSize: Int
        /// The socket's receive buffer, when set.
        package var receiveBufferSize: Int?
        /// How long the TCP connect may take.
        package var connectTimeout: Duration
        /// Whether NIO answers protocol errors itself (close 1002) instead of handing on frames.
        package var automaticErrorHandling: Bool
        /// The subprotocols offered in `Sec-WebSocket-Protocol`, if any.
        package var subprotocols: [String] = []

        /// Settings for a connection.
        package init(
            trustedAuthority: String? = nil, maximumFrameSize: Int, receiveBufferSize: Int? = nil,
            connectTimeout: Duration = .seconds(10), automaticErrorHandling: Bool = true
        ) {
            self.trustedAuthority = trustedAuthority
            self.maximumFrameSize = maximumFrameSize
            self.receiveBufferSize = receiveBufferSize
            self.connectTimeout = connectTimeout
            self.automaticErrorHandling = automaticErrorHandling
        }
    }

    /// Dials `url` (`ws://` or `wss://`); once upgraded, `upgraded` adds the handlers that read
    /// the frames. Returns the upgraded channel; throws ``ClientError/invalidURL(_:)`` or
    /// ``ClientError/refused(status:reason:)``.
    package static func dial(
        _ url: String, settings: Settings, group: any EventLoopGroup,
        upgraded: @escaping @Sendable (any Channel) throws -> Void
    ) async throws -> any Channel {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "ws" || scheme == "wss", let host = components.host, !host.isEmpty
        else { throw ClientError.invalidURL(url) }
        let port = components.port ?? (scheme == "wss" ? 443 : 80)
        let target =
            (components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath)
            + (components.percentEncodedQuery.map { "?" + $0 } ?? "")
        let tls: NIOSSLContext?
        if scheme == "wss" {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let authority = settings.trustedAuthority { configuration.trustRoots = .file(authority) }
            tls = try NIOSSLContext(configuration: configuration)
        } else {
            tls = nil
        }
        let serverName = host.first?.isNumber == true || host.contains(":") ? nil : host
        var bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.nanoseconds(settings.connectTimeout.nanoseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        if let size = settings.receiveBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(size))
        }
        let upgrade: EventLoopFuture<Upgrade> = try await bootstrap.connect(host: host, port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                if let tls {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: tls, serverHostname: serverName))
                }
                let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(
                    maxFrameSize: settings.maximumFrameSize,
                    enableAutomaticErrorHandling: settings.automaticErrorHandling,
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            try upgraded(channel)
                            return Upgrade.upgraded(channel)
                        }
                    })
                var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
                head.headers.add(name: "Host", value: components.port.map { "\(host):\($0)" } ?? host)
                if !settings.subprotocols.isEmpty {
                    head.headers.add(
                        name: "Sec-WebSocket-Protocol", value: settings.subprotocols.joined(separator: ", "))
                }
                let configuration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
                    upgradeRequestHead: head, upgraders: [upgrader],
                    notUpgradingCompletionHandler: { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let refusal = RefusalHandler(promise: channel.eventLoop.makePromise())
                            try channel.pipeline.syncOperations.addHandler(refusal)
                            return Upgrade.refused(refusal.promise.futureResult)
                        }
                    })
                var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: configuration)
                // The server's first frame (`ready`) may share a read with its 101 answer.
                pipeline.leftOverBytesStrategy = .forwardBytes
                return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                    configuration: pipeline)
            }
        }
        switch try await upgrade.get() {
        case .upgraded(let channel):
            return channel
        case .refused(let answer):
            let (status, reason) = try await answer.get()
            throw ClientError.refused(status: status, reason: reason)
        }
    }
}

private enum Upgrade: Sendable {
    case upgraded(any Channel)
    case refused(EventLoopFuture<(Int, String)>)
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
