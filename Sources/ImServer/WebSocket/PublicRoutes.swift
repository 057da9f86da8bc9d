public import NIOCore
public import NIOHTTP1

/// A request to the node's public port that is not a WebSocket upgrade.
public struct PublicRequest: Sendable {
    /// The method.
    public var method: HTTPMethod
    /// The path, without the query.
    public var path: String
    /// The query's parameters (the last value wins).
    public var query: [String: String]
    /// The request headers.
    public var headers: HTTPHeaders
    /// The body (at most 64 KiB).
    public var body: ByteBuffer
}

/// The answer to a ``PublicRequest``.
public struct PublicResponse: Sendable {
    /// The status.
    public var status: HTTPResponseStatus
    /// The `Content-Type`.
    public var contentType: String
    /// The body.
    public var body: ByteBuffer
    /// Headers besides `Content-Type`, `Content-Length` and `Cache-Control`.
    public var headers: HTTPHeaders = [:]

    /// A response with a body.
    public init(status: HTTPResponseStatus = .ok, contentType: String, body: ByteBuffer) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    /// A response with a text body.
    public init(status: HTTPResponseStatus = .ok, contentType: String = "text/plain; charset=utf-8", text: String) {
        self.init(status: status, contentType: contentType, body: ByteBuffer(string: text))
    }

    /// A plain-text error: the status and a one-line reason.
    public static func error(_ status: HTTPResponseStatus, _ reason: String) -> PublicResponse {
        PublicResponse(status: status, text: reason + "\n")
    }
}

/// The plain HTTP endpoints of the public port (health, JS client, demo), by method and path.
public struct PublicRoutes: Sendable {
    /// Answers one request.
    public typealias Handler = @Sendable (PublicRequest) async -> PublicResponse

    private var handlers: [String: Handler] = [:]
    /// The transport that answers event-stream requests on the node's path, if any.
    var eventStreams: EventStreamTransport?

    /// No routes.
    public init() {}

    /// Serves `method path` with `handler`.
    public mutating func add(_ method: HTTPMethod, _ path: String, _ handler: @escaping Handler) {
        handlers["\(method.rawValue) \(path)"] = handler
    }

    /// The handler for a request, if any.
    func handler(for method: HTTPMethod, path: String) -> Handler? {
        handlers["\(method.rawValue) \(path)"]
    }
}
