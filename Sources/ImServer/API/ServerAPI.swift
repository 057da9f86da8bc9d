import Foundation
public import Hummingbird
public import ImCore
public import ImHelper
public import Logging
import NIOCore

/// Where the server API listens and how it authenticates.
public struct ServerAPIConfiguration: Sendable {
    /// The address to bind (default loopback).
    public var host: String
    /// The port (default 6002; 0 picks a free one).
    public var port: Int
    /// The API key clients send as `Authorization: Bearer <key>`; `nil` allows no key on loopback only.
    public var apiKey: String?

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
}

/// Why the server API cannot start.
public enum ServerAPIError: Error, CustomStringConvertible {
    /// No API key is configured but the API would listen beyond loopback.
    case missingKey(host: String)

    public var description: String {
        switch self {
        case .missingKey(let host):
            "the server API listens on \(host), which is not loopback, but no API key is configured "
                + "(set IM_API_KEY or --api-key, or listen on 127.0.0.1)"
        }
    }
}

/// The HTTP server API for back-ends in other languages: every ``ImHelper`` operation as a
/// JSON endpoint, on its own port, behind an API key.
public enum ServerAPI {
    /// The Hummingbird application serving `helper`'s operations; a `Service` to run.
    /// `metrics`, when given, serves `GET /metrics` (Prometheus text, no API key, like
    /// `/v1/health`: keep the API port private).
    public static func makeApplication(
        helper: ImHelper, configuration: ServerAPIConfiguration, health: @escaping @Sendable () -> BackplaneHealth,
        metrics: (@Sendable () -> String)? = nil, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws(ServerAPIError) -> some ApplicationProtocol {
        if configuration.apiKey == nil && !configuration.isLoopback {
            throw .missingKey(host: configuration.host)
        }
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: APIErrorMiddleware())
        router.get("/v1/health") { _, _ -> Response in
            let state = health()
            let body = #"{"status":"\#(state.isUp ? "up" : "down")","bus":\#(jsonQuoted(state.description))}"#
            return Response(status: state.isUp ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        }
        if let metrics {
            router.get("/metrics") { _, _ -> Response in
                Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                         body: ResponseBody(byteBuffer: ByteBuffer(string: metrics())))
            }
        }
        let api = router.group("v1")
        if let key = configuration.apiKey { api.add(middleware: APIKeyMiddleware(key: Array(key.utf8))) }
        APIRoutes(helper: helper).register(on: api)
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                 serverName: "imserver-api"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }
}
