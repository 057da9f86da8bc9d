import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// nats-server as the peer the benchmark compares ImServer with (`--peer nats://host:port`):
/// members connect to its WebSocket listener (`--url ws://host:port/`) and speak the NATS
/// client protocol there (``MemberHandler/receivedNATS(_:context:)``); messages are published
/// to its client port (``NATSPublisher``). There are no tokens to mint and no API: a member
/// subscribes to the fan-out's subject itself.
struct NATSPeer: Sendable, Codable, Equatable {
    var host: String
    var port: Int

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `nats://host:port` (port 4222 by default).
    init(parsing text: String) throws(BenchError) {
        guard let components = URLComponents(string: text), components.scheme == "nats",
            let host = components.host, !host.isEmpty
        else { throw .invalidArgument("'\(text)': --peer takes a nats://host:port URL") }
        self.host = host
        self.port = components.port ?? 4222
    }
}

/// Publishes the pacer's messages to nats-server over one plain TCP connection: each tick's
/// due messages go out as `PUB` commands in one write. NATS has no per-message answer (core
/// NATS is at most once), so a message counts as sent once its write completed.
final class NATSPublisher: PacedSender, @unchecked Sendable {
    // @unchecked: `channel` is set once in `open`, before any send, and read on the pacer's loop.
    private let peer: NATSPeer
    private let subject: String
    private var channel: (any Channel)?

    init(peer: NATSPeer, subject: String) {
        self.peer = peer
        self.subject = subject
    }

    func open(lanes: Int, on loop: any EventLoop) async throws -> Int {
        let channel = try await ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Discard()) }
            }
            .connect(host: peer.host, port: peer.port).get()
        let connect = #"CONNECT {"verbose":false,"pedantic":false,"protocol":1}"# + "\r\n"
        try await channel.writeAndFlush(ByteBuffer(string: connect))
        self.channel = channel
        return lanes
    }

    func send(_ due: [PacedMessage], completion: @escaping @Sendable (PacedMessage, Result<Void, any Error>) -> Void) {
        guard let channel else {
            for message in due { completion(message, .failure(BenchError.invalidArgument("not connected to NATS"))) }
            return
        }
        var batch = channel.allocator.buffer(capacity: due.count * 80)
        var data = channel.allocator.buffer(capacity: 48)
        for message in due {
            data.clear()
            SendPlan.writeData(seq: message.seq, time: message.time, into: &data)
            batch.writeString("PUB \(subject) \(data.readableBytes)\r\n")
            batch.writeImmutableBuffer(data)
            batch.writeStaticString("\r\n")
        }
        channel.writeAndFlush(batch).whenComplete { result in
            for message in due { completion(message, result.mapError { $0 }) }
        }
    }

    func close() async {
        try? await channel?.close()
    }

    /// Drops what the server sends (`INFO`, `PING`s are not expected within a run's minutes).
    private final class Discard: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    }
}
