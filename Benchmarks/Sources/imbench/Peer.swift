import NIOCore

/// A server the benchmark measures instead of ImServer (`--peer`), with the same client: its
/// members connect to the peer's WebSocket listener (`--url`) without a token and subscribe to
/// the fan-out's channel (or, p2p receivers of a Centrifuge peer, their own) themselves; the
/// pacer publishes where the peer takes messages.
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

    /// What the members subscribe to for `plan`: the fan-out's channel; with `.pairs`, each
    /// receiver its own user's channel, which only a Centrifuge peer has.
    func subscription(for plan: SendPlan) throws(BenchError) -> PeerSubscription {
        switch (self, plan) {
        case (_, .channel(let channel)): .channel(channel)
        case (.centrifuge, .pairs): .personal
        case (.nats, .pairs): throw .invalidArgument("p2p takes --peer centrifuge://…, not a NATS peer")
        }
    }

    /// The pacer's sender of `plan` to this peer.
    func sender(for plan: SendPlan) throws(BenchError) -> any PacedSender {
        switch (self, plan) {
        case (.nats(let peer), .channel(let channel)): NATSPublisher(peer: peer, subject: channel)
        case (.centrifuge(let peer), .channel(let channel)):
            APISender(api: peer.serverAPI, request: .centrifugePublish(channel: channel))
        case (.centrifuge(let peer), .pairs(let pairs)):
            APISender(api: peer.serverAPI, request: .centrifugePublish(pairs: pairs))
        case (.nats, .pairs): throw .invalidArgument("p2p takes --peer centrifuge://…, not a NATS peer")
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

    /// How member `name` meets the peer whose WebSocket listener is `websocket`: where it
    /// connects, and what it sends once upgraded (its connect, and its `subscription` if any).
    func meeting(_ name: String, at websocket: Endpoint, subscription: PeerSubscription?) throws(BenchError)
        -> PeerMeeting
    {
        switch (self, subscription) {
        case (.nats, .personal?):
            throw .invalidArgument("nats-server has no users: a NATS peer's members cannot subscribe as their own")
        case (.nats, let subscription):
            return PeerMeeting(
                endpoint: websocket, greeting: MemberHandler.natsGreeting(subject: subscription?.channel))
        case (.centrifuge, .personal?):
            return PeerMeeting(
                endpoint: CentrifugePeer.endpoint(websocket, user: name),
                greeting: MemberHandler.centrifugeGreeting(channel: CentrifugePeer.personalChannel(of: name)))
        case (.centrifuge, let subscription):
            return PeerMeeting(
                endpoint: websocket, greeting: MemberHandler.centrifugeGreeting(channel: subscription?.channel))
        }
    }
}

/// What a peer's members subscribe to (passed to worker processes in the ``FleetSpec``).
enum PeerSubscription: Sendable, Codable, Equatable {
    /// The one channel (NATS subject) every member subscribes to: the fan-out's.
    case channel(String)
    /// Each member its own user's channel: the receivers of `p2p`. Centrifuge only: member
    /// `r<i>` connects as user `r<i>` and subscribes to ``CentrifugePeer/personalChannel(of:)``.
    case personal

    /// The shared channel, if it is one.
    var channel: String? {
        if case .channel(let channel) = self { channel } else { nil }
    }
}

/// Where a peer's member connects, and what it sends once upgraded.
struct PeerMeeting: Sendable {
    var endpoint: Endpoint
    var greeting: PeerGreeting
}

/// What a member sends a peer once upgraded, in the peer's protocol, and what makes it ready.
enum PeerGreeting: Sendable {
    /// NATS: `CONNECT`, `SUB`, `PING` in one binary frame; the `PONG` makes the member ready.
    case nats(ByteBuffer)
    /// Centrifuge: the connect (and subscribe) commands in one text frame; the reply to
    /// command `readyID` (the last one) makes the member ready.
    case centrifuge(ByteBuffer, readyID: UInt32)
}
