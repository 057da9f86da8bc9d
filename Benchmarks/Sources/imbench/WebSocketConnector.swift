import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Opens benchmark WebSockets on raw SwiftNIO: one ``MemberHandler`` per socket writes the
/// upgrade request and reads everything after it (no HTTP codec, no upgrade handlers). A
/// `wss://` or `https://` endpoint gets a TLS handler in front of it; a plain one gets nothing
/// more than before.
struct WebSocketConnector: Sendable {
    let recorders: Recorders
    let readyTimeout: TimeAmount
    /// TLS for secure endpoints; `nil` refuses them.
    let tls: ClientTLS?
    /// Source and server addresses, parsed once (every connection uses the same few).
    private let addresses = AddressCache()

    /// Whether members ask for the compact encoding.
    let compact: Bool

    init(recorders: Recorders, readyTimeout: TimeAmount, tls: ClientTLS? = nil, compact: Bool = false) {
        self.recorders = recorders
        self.readyTimeout = readyTimeout
        self.tls = tls
        self.compact = compact
    }

    /// Connects to `endpoint` (its target carries the token) on `loop`, binding to `source` if
    /// given; the member tracks sequence numbers with `tracker`. Completes when `ready` arrived
    /// or the server refused the upgrade. Futures on the loop, no task per connection: the
    /// client's cost per handshake is part of what the machine can measure.
    func connect(
        to endpoint: Endpoint, from source: String?, tracker: SeqTracker,
        on loop: any EventLoop, peerGreeting: PeerGreeting? = nil
    ) -> EventLoopFuture<MemberOutcome> {
        let recorder = recorders.recorder(for: loop)
        let readyTimeout = self.readyTimeout
        // Each bootstrap option is a future step per connection: only what must precede the
        // bind is one; TCP_NODELAY is set in the initializer.
        var bootstrap = ClientBootstrap(group: loop).connectTimeout(.seconds(15))
        do {
            if let source {
                bootstrap =
                    bootstrap
                    // Defer picking the source port to connect() (which keeps the 4-tuple
                    // unique): bind() alone searches the whole port range of that address for
                    // each socket.
                    .channelOption(
                        ChannelOptions.Types.SocketOption(level: .ip, name: Self.bindAddressNoPort), value: 1
                    )
                    .bind(to: try addresses.address(of: source, port: 0))
            }
            let address = try addresses.address(of: endpoint.host, port: endpoint.port)
            let secure = try secureSession(for: endpoint)
            let host = endpoint.host
            let request = Self.upgradeRequest(target: endpoint.target, host: endpoint.hostHeader, compact: compact)
            let outcome = MemberOutcome.Slot(promise: loop.makePromise())
            bootstrap.channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.syncOptions?.setOption(.socketOption(.tcp_nodelay), value: 1)
                    if let secure { try channel.pipeline.syncOperations.addHandler(try secure.makeHandler(host: host)) }
                    try channel.pipeline.syncOperations.addHandler(
                        MemberHandler(
                            recorder: recorder, tracker: tracker, request: request, outcome: outcome,
                            readyTimeout: readyTimeout, peerGreeting: peerGreeting))
                }
            }
            .connect(to: address)
            .whenFailure { outcome.fail($0) }
            return outcome.futureResult
        } catch {
            return loop.makeFailedFuture(error)
        }
    }

    /// The TLS to put in front of the member for `endpoint`: `nil` when it is plain.
    private func secureSession(for endpoint: Endpoint) throws(BenchError) -> ClientTLS? {
        guard endpoint.isSecure else { return nil }
        guard let tls else { throw .invalidArgument("\(endpoint.scheme):// endpoint but no TLS set up for it") }
        return tls
    }

    /// `IP_BIND_ADDRESS_NO_PORT` (Linux).
    private static let bindAddressNoPort = NIOBSDSocket.Option(rawValue: 24)

    /// `GET target HTTP/1.1` with the upgrade headers and a fresh `Sec-WebSocket-Key` (and the
    /// compact encoding's subprotocol when `compact`).
    static func upgradeRequest(target: String, host: String, compact: Bool = false) -> ByteBuffer {
        // Two draws from the system generator (each one is a getrandom call).
        var generator = SystemRandomNumberGenerator()
        var nonce = Data(count: 16)
        nonce.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: generator.next() as UInt64, toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: generator.next() as UInt64, toByteOffset: 8, as: UInt64.self)
        }
        let key = nonce.base64EncodedString()
        var buffer = ByteBuffer()
        buffer.reserveCapacity(target.utf8.count + 160)
        buffer.writeString("GET \(target) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
        if compact { buffer.writeString("Sec-WebSocket-Protocol: imserver.v1.msgpack\r\n") }
        buffer.writeString("Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n")
        return buffer
    }
}

/// Socket addresses by host and port, parsed or resolved once.
final class AddressCache: Sendable {
    private struct Key: Hashable {
        var host: String
        var port: Int
    }

    private let cache = Mutex<[Key: SocketAddress]>([:])

    /// The address of `host` (an IP literal needs no resolver, and no Happy Eyeballs race) and `port`.
    func address(of host: String, port: Int) throws -> SocketAddress {
        let key = Key(host: host, port: port)
        if let known = cache.withLock({ $0[key] }) { return known }
        let address =
            try (try? SocketAddress(ipAddress: host, port: port))
            ?? SocketAddress.makeAddressResolvingHost(host, port: port)
        cache.withLock { $0[key] = address }
        return address
    }
}
