import NIOCore

/// A server the benchmark measures instead of ImServer (`--peer`), with the same client: its
/// members connect to the peer's WebSocket listener (`--url`) without a token and subscribe to
/// the fan-out's channel themselves; the pacer publishes where the peer takes messages.
enum Peer: Sendable, Equatable {
    /// nats-server: `nats://host:port`, its client port (``NATSPeer``).
    case nats(NATSPeer)
    /// A Centrifuge node (Benchmarks/Peers/centrifuge): `centrifuge://host:port`, its server
    /// API (``CentrifugePeer``).
    case centrifuge(CentrifugePeer)

    /// Parses `nats://host:port` or `centrifuge://host:port`.
    init(parsing text: String) throws(BenchError) {
        switch text.prefix(while: { $0 != ":" }) {
        case "nats": self = .nats(try NATSPeer(parsing: text))
        case "centrifuge": self = .centrifuge(try CentrifugePeer(parsing: text))
        default:
            throw .invalidArgument("'\(text)': --peer takes nats://host:port or centrifuge://host:port")
        }
    }

    /// The protocol members speak with this peer.
    var dialect: PeerDialect {
        switch self {
        case .nats: .nats
        case .centrifuge: .centrifuge
        }
    }
}

/// The protocol a member speaks with a peer inside its WebSocket frames (passed to worker
/// processes in the ``FleetSpec``).
enum PeerDialect: String, Sendable, Codable {
    /// The NATS client protocol (``MemberHandler/receivedNATS(_:context:)``).
    case nats
    /// Centrifuge's JSON protocol (``MemberHandler/receivedCentrifuge(_:endsMessage:readyID:context:)``).
    case centrifuge

    /// What a member sends once upgraded: its connect, and its subscription to `channel` if any.
    func greeting(channel: String?) -> PeerGreeting {
        switch self {
        case .nats: MemberHandler.natsGreeting(subject: channel)
        case .centrifuge: MemberHandler.centrifugeGreeting(channel: channel)
        }
    }
}

/// What a member sends a peer once upgraded, in the peer's protocol, and what makes it ready.
enum PeerGreeting: Sendable {
    /// NATS: `CONNECT`, `SUB`, `PING` in one binary frame; the `PONG` makes the member ready.
    case nats(ByteBuffer)
    /// Centrifuge: the connect (and subscribe) commands in one text frame; the reply to
    /// command `readyID` (the last one) makes the member ready.
    case centrifuge(ByteBuffer, readyID: UInt32)
}
