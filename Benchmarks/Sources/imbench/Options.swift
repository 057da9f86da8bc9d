import ArgumentParser
import NIOCore

/// Where the server under test is.
struct ServerOptions: ParsableArguments {
    @Option(help: "WebSocket endpoint to connect to (default: the URL the API mints); the minted token is kept.")
    var url: String?
    @Option(help: "Server API base URL.")
    var api = "http://127.0.0.1:6002"
    @Option(help: "Server API key (sent as Authorization: Bearer).")
    var apiKey: String?
    @Option(
        help: """
            Measure another server instead of ImServer, where the benchmark publishes: nats-server's \
            client URL (nats://host:4222), or the Centrifuge peer's API (centrifuge://host:port, \
            Benchmarks/Peers/centrifuge). --url is then its WebSocket listener: ws://host:port/ \
            for NATS, ws://host:port/connection/websocket for Centrifuge.
            """)
    var peer: String?

    /// The API endpoints and WebSocket override these options name.
    func targets() throws -> Targets {
        let api = try Endpoint(parsing: self.api)
        guard !api.isSecure else { throw BenchError.invalidArgument(HTTPConnection.plainOnly(api)) }
        let peer = try peer.map { text throws(BenchError) in try Peer(parsing: text) }
        if peer != nil, url == nil {
            throw BenchError.invalidArgument("--peer needs --url, the WebSocket listener of the peer")
        }
        return Targets(apis: [api], apiKey: apiKey, websocket: try url.map { try Endpoint(parsing: $0) }, peer: peer)
    }
}

/// How the benchmark's clients connect.
struct ClientOptions: ParsableArguments {
    @Option(help: "Local addresses for client sockets, e.g. 127.0.0.2-127.0.0.30 (loopback only).")
    var sourceAddresses: String?
    @Option(help: "WebSocket handshakes in flight at once (per process).")
    var concurrency = 256
    @Option(help: "connect-url requests in flight at once (per process).")
    var mintConcurrency = 32
    @Option(help: "Connect URLs per request: 1 uses POST /v1/connect-url, more POST /v1/connect-urls (at most 1000).")
    var mintBatch = 1
    @Option(help: "Split the clients over this many worker processes (each may open up to the file limit).")
    var workers = 0
    @Option(help: "Event loop threads per process (default: cores, or 1 per worker).")
    var threads: Int?
    @Option(help: "Seconds to wait for a connection's ready frame.")
    var readyTimeout = 30.0
    @Option(
        help: """
            Process id of the server, to read its memory (VmRSS) before and after; use a freshly \
            started server, since memory freed by earlier runs is not returned to the system.
            """)
    var pid: Int32?
    @Option(help: "wss:// and https://: a PEM file of CA certificates to trust instead of the system's.")
    var ca: String?
    @Option(help: "Frame encoding the members ask for: json, or msgpack (the compact encoding, protocol.md §9).")
    var encoding = Encoding.json
    @Flag(
        help: """
            wss:// and https://: accept any server certificate without checking it or its host \
            (only for a local test server with a self-signed certificate).
            """)
    var insecure = false

    /// A fleet spec for `count` members named `prefix<i>`, expecting sequence numbers by `stride`.
    func spec(targets: Targets, prefix: String, count: Int, stride: Int) throws -> FleetSpec {
        guard count > 0 else { throw BenchError.invalidArgument("the client count must be positive") }
        guard workers >= 0, concurrency > 0, mintConcurrency > 0 else {
            throw BenchError.invalidArgument("--workers, --concurrency and --mint-concurrency must be positive")
        }
        guard (1...1000).contains(mintBatch) else {
            throw BenchError.invalidArgument("--mint-batch must be from 1 to 1000")
        }
        guard targets.peer == nil || encoding == .json else {
            throw BenchError.invalidArgument("--encoding msgpack is ImServer's: not with --peer")
        }
        let sources = try sourceAddresses.map { try SourceAddresses(parsing: $0) } ?? .none
        let defaultThreads = workers > 1 ? 1 : System.coreCount
        return FleetSpec(
            apis: targets.apis, apiKey: targets.apiKey, websocket: targets.websocket, prefix: prefix,
            first: 0, count: count, stride: stride, sources: sources, concurrency: concurrency,
            mintConcurrency: mintConcurrency, mintBatch: mintBatch, readyTimeout: readyTimeout,
            threads: threads ?? defaultThreads, tls: try tlsTrust(), compact: encoding == .msgpack,
            peer: targets.peer?.dialect)
    }

    /// The certificates `--ca` and `--insecure` accept; checked here (the file read, the two
    /// not given together) so that a bad one stops the run before any connection.
    func tlsTrust() throws(BenchError) -> TLSTrust {
        let trust = TLSTrust(caFile: ca, insecure: insecure)
        if trust != TLSTrust() { _ = try ClientTLS(trust) }
        return trust
    }

    /// The fleet for `spec`: in this process, or over `--workers` processes.
    func makeFleet(_ spec: FleetSpec) throws -> any Fleet {
        if workers > 1 { return try WorkerFleet(spec: spec, workers: min(workers, spec.count)) }
        let limit = ProcessResources.raiseOpenFileLimit()
        if spec.count + 256 > limit {
            Console.log("warning: \(spec.count) clients but only \(limit) open files per process; add --workers")
        }
        return LocalFleet(spec: spec)
    }
}

/// How fast and how long to send.
struct LoadOptions: ParsableArguments {
    /// How messages are sent.
    enum Sender: String, ExpressibleByArgument, CaseIterable {
        /// HTTP server API requests.
        case api
        /// ImHelper in this process, on the nodes' backplane (`--backplane`).
        case helper
    }

    @Option(help: "Messages per second.")
    var rate: Double
    @Option(help: "Seconds to send for.")
    var duration: Double
    @Option(help: "Most seconds to wait after the last send for deliveries to arrive.")
    var settle = 5.0
    @Option(help: "Sends in flight at once (api: one keep-alive connection each).")
    var inFlight = 8
    @Option(help: "Send through the HTTP API (api) or an in-process ImHelper on the backplane (helper).")
    var sender = Sender.api
    @Option(help: "helper: the nodes' backplane URL, e.g. redis://127.0.0.1:6379.")
    var backplane: String?

    func validate() throws {
        guard rate > 0, duration > 0, inFlight > 0, settle >= 0 else {
            throw ValidationError("--rate, --duration and --in-flight must be positive")
        }
        if sender == .helper && backplane == nil {
            throw ValidationError("--sender helper needs --backplane (the nodes' backplane URL)")
        }
    }
}

/// The server endpoints of a run: one API per node, and an optional WebSocket override.
struct Targets: Sendable {
    var apis: [Endpoint]
    var apiKey: String?
    var websocket: Endpoint?
    /// The server under test when it is not ImServer (`--peer`).
    var peer: Peer?

    var api: ServerAPI { ServerAPI(nodes: apis, apiKey: apiKey) }
}

/// The frame encodings members can ask for.
enum Encoding: String, ExpressibleByArgument, Sendable {
    case json, msgpack
}
