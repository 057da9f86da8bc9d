import Foundation
import NIOCore
import NIOPosix

/// Opens benchmark WebSockets on raw SwiftNIO: one ``MemberHandler`` per socket writes the
/// upgrade request and reads everything after it (no HTTP codec, no upgrade handlers).
struct WebSocketConnector: Sendable {
    let recorders: Recorders
    let group: any EventLoopGroup
    let readyTimeout: TimeAmount

    /// Connects to `endpoint` (its target carries the token), binding to `source` if given;
    /// the member tracks sequence numbers with `tracker`. Returns when `ready` arrived or the
    /// server refused the upgrade.
    func connect(to endpoint: Endpoint, from source: String?, tracker: SeqTracker) async throws -> MemberOutcome {
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
        let request = Self.upgradeRequest(target: endpoint.target, host: endpoint.hostHeader)
        // An IP literal needs no resolver (and no Happy Eyeballs race) per connection.
        let address = try (try? SocketAddress(ipAddress: endpoint.host, port: endpoint.port))
            ?? SocketAddress.makeAddressResolvingHost(endpoint.host, port: endpoint.port)
        let outcome: EventLoopFuture<MemberOutcome> = try await bootstrap.connect(to: address) { channel in
            channel.eventLoop.makeCompletedFuture {
                let outcome = channel.eventLoop.makePromise(of: MemberOutcome.self)
                let handler = MemberHandler(recorder: recorders.recorder(for: channel.eventLoop), tracker: tracker,
                                            request: request, outcome: outcome, readyTimeout: readyTimeout)
                try channel.pipeline.syncOperations.addHandler(handler)
                return outcome.futureResult
            }
        }
        return try await outcome.get()
    }

    /// `GET target HTTP/1.1` with the upgrade headers and a fresh `Sec-WebSocket-Key`.
    static func upgradeRequest(target: String, host: String) -> ByteBuffer {
        var nonce = [UInt8](repeating: 0, count: 16)
        for index in nonce.indices { nonce[index] = .random(in: .min ... .max) }
        let key = Data(nonce).base64EncodedString()
        var buffer = ByteBuffer()
        buffer.reserveCapacity(target.utf8.count + 160)
        buffer.writeString("GET \(target) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
        buffer.writeString("Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n")
        return buffer
    }
}
