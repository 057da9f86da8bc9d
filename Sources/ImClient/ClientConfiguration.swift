/// How an ``ImClient`` connects, keeps its connection alive and reconnects.
public struct ClientConfiguration: Sendable {
    /// The first reconnect delay; it doubles per failed attempt up to ``maximumDelay``, and
    /// each delay is drawn between half of it and all of it ("equal jitter").
    public var minimumDelay: Duration = .milliseconds(500)
    /// The longest reconnect delay.
    public var maximumDelay: Duration = .seconds(15)
    /// How often the client sends `ping` while connected.
    public var pingInterval: Duration = .seconds(20)
    /// A connection from which nothing at all arrived for this long is dead: the client drops
    /// it and reconnects (checked at each ping).
    public var silenceLimit: Duration = .seconds(45)
    /// How long opening a connection may take, TLS and upgrade included.
    public var connectTimeout: Duration = .seconds(10)
    /// Close codes after which the client stops instead of reconnecting.
    public var finalCloseCodes: Set<UInt16> = [4003]
    /// Events kept for a consumer that falls behind; beyond, the oldest are dropped (counted in
    /// ``ImClient/droppedEvents``).
    public var eventBufferLimit = 10_000
    /// The largest frame accepted from the server, in bytes.
    public var maximumFrameSize = 1 << 20
    /// For `wss://` URLs: a certificate authority (PEM file) to trust instead of the system's.
    public var trustedAuthority: String?
    /// The encoding the client asks the server for (docs/protocol.md §9).
    public var encoding: FrameEncoding = .json

    /// The defaults.
    public init() {}
}

/// How the server encodes the frames it sends a client.
public enum FrameEncoding: Sendable {
    /// JSON text frames (docs/protocol.md §2).
    case json
    /// MessagePack binary frames, the `imserver.v1.msgpack` subprotocol (docs/protocol.md §9):
    /// about a third fewer bytes per message. A server that does not speak it answers in JSON,
    /// which the client reads as well.
    case messagePack
}
