public import ImServer
import Foundation
public import Hummingbird
public import ImCore
public import ImHelper
public import Logging
import HummingbirdCore
import NIOCore

/// Where the server API listens and how it authenticates.
public struct ServerAPIConfiguration: Sendable {
    /// The address to bind (default loopback).
    public var host: String
    /// The port (default 6002; 0 picks a free one).
    public var port: Int
    /// The API key clients send as `Authorization: Bearer <key>`; `nil` allows no key on loopback only.
    public var apiKey: String?
    /// How far a `GET /v1/events` reader may fall behind before it is disconnected.
    public var eventLimits = EventStreamLimits()
    /// TLS for the API (`https://`), or `nil` for plain HTTP.
    public var tls: ReloadableTLS?
    /// Whether plain single sends and connect URLs are answered on the connection's event loop
    /// by ``APIFastLane`` (off only to compare the lane's answers with the router's).
    var answersOnTheLoop = true

    /// A configuration with the documented defaults.
    public init(host: String = "127.0.0.1", port: Int = 6002, apiKey: String? = nil) {
        self.host = host
        self.port = port
        self.apiKey = apiKey
    }

    /// Whether `host` is a loopback address.
    public var isLoopback: Bool { Self.isLoopback(host) }

    /// Whether `host` names a loopback address (`localhost`, `127.x.x.x`, `::1`).
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// The shortest API key accepted, in bytes: a shorter one is guessable.
    public static let minimumKeyLength = 16

    /// Refuses a configuration the API must not start with: an empty key, a key shorter than
    /// ``minimumKeyLength`` bytes, or no key on an address that is not loopback.
    public func validate() throws(ServerAPIError) {
        if let apiKey {
            guard !apiKey.isEmpty else { throw .emptyKey }
            guard apiKey.utf8.count >= Self.minimumKeyLength else { throw .shortKey(length: apiKey.utf8.count) }
        } else if !isLoopback {
            throw .missingKey(host: host)
        }
    }
}

/// Why the server API cannot start.
public enum ServerAPIError: Error, Equatable, CustomStringConvertible {
    /// No API key is configured but the API would listen beyond loopback.
    case missingKey(host: String)
    /// The configured API key is the empty string.
    case emptyKey
    /// The configured API key has fewer than ``ServerAPIConfiguration/minimumKeyLength`` bytes.
    case shortKey(length: Int)

    public var description: String {
        switch self {
        case .missingKey(let host):
            "the server API listens on \(host), which is not loopback, but no API key is configured "
                + "(set IM_API_KEY or --api-key, or listen on 127.0.0.1)"
        case .emptyKey:
            "the server API key (api.key, IM_API_KEY, --api-key) is empty; set a secret of at least "
                + "\(ServerAPIConfiguration.minimumKeyLength) bytes, or leave it unset on a loopback address"
        case .shortKey(let length):
            "the server API key (api.key, IM_API_KEY, --api-key) has \(length) bytes, too short to be secret; "
                + "use at least \(ServerAPIConfiguration.minimumKeyLength)"
        }
    }
}

/// The HTTP server API for back-ends in other languages: every ``ImHelper`` operation as a
/// JSON endpoint, on its own port, behind an API key.
public enum ServerAPI {
    /// The `Server` header of the API's answers.
    static let serverName = "imserver-api"

    /// The Hummingbird application serving `helper`'s operations; a `Service` to run.
    /// `health` is the backplane's combined health (``Backplane/health``), served at
    /// `GET /v1/health` (200 when up, 503 when down). `metrics`, when given, serves `GET /metrics` (Prometheus text, behind the API key when
    /// one is configured; `/v1/health` needs none). `nodeStats`, when given, serves
    /// `GET /v1/node/stats` (the node's live figures, behind the key); `GET /admin` serves the
    /// admin page, which shows them (see ``AdminPage``).
    ///
    /// Every request with a body must be `application/json` (415 otherwise). Without a key the
    /// API answers only requests whose `Host` is a loopback name and whose `Origin`, if any, is
    /// a loopback page (403 otherwise), so web pages cannot drive it.
    public static func makeApplication(
        helper: ImHelper, configuration: ServerAPIConfiguration, health: @escaping @Sendable () -> BackplaneHealth,
        metrics: (@Sendable () -> String)? = nil, nodeStats: (@Sendable () async -> NodeSnapshot)? = nil,
        logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws(ServerAPIError) -> some ApplicationProtocol {
        try configuration.validate()
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: APIErrorMiddleware())
        if configuration.apiKey == nil { router.add(middleware: LoopbackOnlyMiddleware()) }
        router.add(middleware: JSONBodyMiddleware())
        router.get("/v1/health") { _, _ -> Response in
            let state = health()
            let body = #"{"status":"\#(state.isUp ? "up" : "down")","backplane":\#(jsonQuoted(state.description))}"#
            return Response(
                status: state.isUp ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        }
        let keyed = configuration.apiKey.map { APIKeyMiddleware<BasicRequestContext>(key: Array($0.utf8)) }
        if let metrics {
            let group = router.group("metrics")
            if let keyed { group.add(middleware: keyed) }
            group.get { _, _ -> Response in
                Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: metrics())))
            }
        }
        // The page needs no key to be served (it holds no data; its script sends the key with
        // every call). Without a key the router's LoopbackOnlyMiddleware still applies to it and
        // to its calls: opened at http://127.0.0.1:<port>/admin, the page and its fetches go to
        // a loopback Host, and its Origin (sent on its POSTs) is that same loopback page.
        router.get("/admin") { _, _ in AdminPage.response() }
        let api = router.group("v1")
        if let keyed { api.add(middleware: keyed) }
        APIRoutes(helper: helper, eventLimits: configuration.eventLimits).register(on: api)
        if let nodeStats {
            api.get("node/stats") { _, _ in NodeStatsBody(await nodeStats()) }
        }
        return Application(
            router: router,
            server: .loopAffineHTTP1(
                tls: configuration.tls,
                fastLane: configuration.answersOnTheLoop
                    ? APIFastLane.Settings(
                        helper: helper, apiKey: configuration.apiKey.map { Array($0.utf8) }, serverName: serverName)
                    : nil),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: serverName),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }
}
