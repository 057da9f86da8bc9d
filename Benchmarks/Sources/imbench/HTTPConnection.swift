import NIOCore
import NIOHTTP1
import NIOPosix

/// A complete HTTP response: status and aggregated body.
struct HTTPReply: Sendable {
    var status: UInt
    var body: ByteBuffer

    /// Whether the status is 2xx.
    var isSuccess: Bool { (200..<300).contains(status) }

    /// The body as text.
    var text: String { String(buffer: body) }
}

/// Why a request got no response.
enum HTTPConnectionError: Error, CustomStringConvertible {
    /// The connection closed before the response was complete.
    case closed

    var description: String { "connection closed" }
}

/// One keep-alive HTTP/1.1 connection on raw SwiftNIO, with one request in flight at a time
/// per caller discipline (requests may also be pipelined: responses complete in order).
///
/// `request` may be called from any thread; it is cheapest on the connection's own loop.
final class HTTPConnection: Sendable {
    /// The connection's channel.
    let channel: any Channel
    /// Where it is connected.
    let endpoint: Endpoint
    private let handler: NIOLoopBound<HTTPReplyHandler>
    private let hostHeader: String
    private let authorization: String?

    private init(
        channel: any Channel, endpoint: Endpoint, handler: NIOLoopBound<HTTPReplyHandler>,
        hostHeader: String, authorization: String?
    ) {
        self.channel = channel
        self.endpoint = endpoint
        self.handler = handler
        self.hostHeader = hostHeader
        self.authorization = authorization
    }

    /// The loop the connection lives on.
    var eventLoop: any EventLoop { channel.eventLoop }

    /// Whether the socket is still open.
    var isActive: Bool { channel.isActive }

    /// Connects to `endpoint` on `loop`; `apiKey` is sent as `Authorization: Bearer <key>`.
    static func connect(to endpoint: Endpoint, apiKey: String?, on loop: any EventLoop)
        -> EventLoopFuture<HTTPConnection>
    {
        guard !endpoint.isSecure else { return loop.makeFailedFuture(BenchError.invalidArgument(plainOnly(endpoint))) }
        let hostHeader = endpoint.hostHeader
        let authorization = apiKey.map { "Bearer " + $0 }
        return ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(HTTPReplyHandler())
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: HTTPReplyHandler.self)
                return HTTPConnection(
                    channel: channel, endpoint: endpoint, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop),
                    hostHeader: hostHeader, authorization: authorization)
            }
    }

    /// Why `endpoint` (an `https://` API) is refused: the benchmark speaks TLS on WebSockets only.
    static func plainOnly(_ endpoint: Endpoint) -> String {
        "'\(endpoint)': the server API is called over plain http:// only (TLS is for the WebSocket --url); "
            + "serve the API without api.tls on loopback for the benchmark"
    }

    /// Connects, from Swift concurrency.
    static func connect(to endpoint: Endpoint, apiKey: String?, on loop: any EventLoop) async throws -> HTTPConnection {
        try await connect(to: endpoint, apiKey: apiKey, on: loop).get()
    }

    /// Sends `method target` with a JSON `body` (if any); completes with the response.
    func request(_ method: HTTPMethod, _ target: String, body: ByteBuffer? = nil) -> EventLoopFuture<HTTPReply> {
        let promise = channel.eventLoop.makePromise(of: HTTPReply.self)
        if channel.eventLoop.inEventLoop {
            send(method, target, body: body, promise: promise)
        } else {
            channel.eventLoop.execute { self.send(method, target, body: body, promise: promise) }
        }
        return promise.futureResult
    }

    /// Sends a request from Swift concurrency.
    func request(_ method: HTTPMethod, _ target: String, json: String? = nil) async throws -> HTTPReply {
        try await request(method, target, body: json.map { ByteBuffer(string: $0) }).get()
    }

    /// Closes the connection.
    func close() {
        channel.close(promise: nil)
    }

    private func send(_ method: HTTPMethod, _ target: String, body: ByteBuffer?, promise: EventLoopPromise<HTTPReply>) {
        guard channel.isActive else {
            promise.fail(HTTPConnectionError.closed)
            return
        }
        var headers = HTTPHeaders()
        headers.reserveCapacity(5)
        headers.add(name: "Host", value: hostHeader)
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.readableBytes))
        } else if method == .POST || method == .PUT {
            headers.add(name: "Content-Length", value: "0")
        }
        handler.value.expect(promise)
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: target, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }
}

/// Matches responses to the requests' promises, in order.
final class HTTPReplyHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private var waiting = CircularBuffer<EventLoopPromise<HTTPReply>>(initialCapacity: 4)
    private var status: UInt = 0
    private var body: ByteBuffer?

    /// Queues the promise of a request about to be written.
    func expect(_ promise: EventLoopPromise<HTTPReply>) {
        waiting.append(promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status.code
            body = nil
        case .body(var part):
            if body == nil { body = part } else { body!.writeBuffer(&part) }
        case .end:
            let reply = HTTPReply(status: status, body: body ?? ByteBuffer())
            body = nil
            waiting.popFirst()?.succeed(reply)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        while let promise = waiting.popFirst() { promise.fail(HTTPConnectionError.closed) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        while let promise = waiting.popFirst() { promise.fail(error) }
        context.close(promise: nil)
    }
}
