/// The benchmark's clients, in this process or spread over worker processes.
///
/// The scenarios drive a fleet in phases: mint every member's connect URL, open every
/// WebSocket, read counters while load runs, then check what arrived against what was sent.
protocol Fleet: Sendable {
    /// Mints the members' connect URLs through the server API.
    func mint() async throws -> MintReport
    /// Opens the members' WebSockets; a member counts once its `ready` arrived.
    func connect() async throws -> ConnectReport
    /// Current counters; resets the interval latency histogram.
    func snapshot() async throws -> Snapshot
    /// Checks what the members received against sequence numbers `0..<sent` (less `failed`).
    func finish(sent: Int, failed: [Int]) async throws -> DeliveryReport
    /// Closes every WebSocket and releases the fleet's threads.
    func close() async
}

/// Which members a fleet holds and how it reaches the server: passed to worker processes
/// as JSON.
struct FleetSpec: Sendable, Codable {
    /// The server API of each node; member `g` mints its URL on node `g % apis.count`.
    var apis: [Endpoint]
    /// The API key.
    var apiKey: String?
    /// Where to connect instead of the minted URL's host, port and path (the token is kept).
    var websocket: Endpoint?
    /// Member names are this prefix and the member's global index.
    var prefix: String
    /// The global index of this fleet's first member.
    var first: Int
    /// How many members this fleet holds.
    var count: Int
    /// Member `g` expects sequence numbers `n` with `n % stride == g % stride`; 0 tracks none.
    var stride: Int
    /// Source addresses for the client sockets (by global index).
    var sources: SourceAddresses
    /// Handshakes in flight at once.
    var concurrency: Int
    /// Mint requests in flight at once.
    var mintConcurrency: Int
    /// Connect URLs minted per request (1: one `POST /v1/connect-url` each).
    var mintBatch = 1
    /// Seconds to wait for `ready` after the upgrade.
    var readyTimeout: Double
    /// Event loop threads.
    var threads: Int
    /// The certificates accepted from `wss://` servers.
    var tls = TLSTrust()
    /// Whether members ask for the compact encoding (`imserver.v1.msgpack`, docs/protocol.md §9).
    var compact = false
    /// The peer's protocol when the server is a peer (``Peer``), not ImServer: members connect to
    /// ``websocket`` without a token and speak it.
    var peer: PeerDialect?
    /// With ``peer``: what members subscribe to (the fan-out's channel, or each its own), if any.
    var peerSubscription: PeerSubscription?

    /// The name of the member with global index `index`.
    func name(of index: Int) -> String { prefix + String(index) }

    /// The part of this spec for members `first..<first+count` (relative to this spec's first).
    func slice(from offset: Int, count: Int) -> FleetSpec {
        var copy = self
        copy.first = first + offset
        copy.count = count
        return copy
    }
}
