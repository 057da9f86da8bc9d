import Hummingbird
import ImCore
import ImHelper
import Logging
import NIOCore
import NIOHTTP1

/// Answers the API's plain single sends (``SendRoute``) and single connect URLs on the
/// connection's event loop, ahead of Hummingbird.
///
/// Through Hummingbird, a single send's HTTP handling — the request's conversion to HTTP types,
/// the hops between the channel and the connection's task, the request and response streams,
/// the router and the middleware — cost more than the send itself (about 20–25 µs of 50 on the
/// reference machine), and twice what minting a connect URL costs. This handler sits right
/// after the HTTP/1 decoder, reads such a request itself and answers it when the send is done,
/// or at once with the URL it minted.
///
/// It takes a request only when the router's answer would be the lane's:
/// - HTTP/1.1 `POST` to exactly one of the three send paths (``SendRoute``) or
///   `/v1/connect-url`;
/// - the API key presented (``APIKeyMiddleware``), or without one the loopback checks passed
///   (``LoopbackOnlyMiddleware``);
/// - a JSON body (``JSONBodyMiddleware``) of a declared `Content-Length` within
///   ``APIRoutes/maximumBodyBytes``, no `Transfer-Encoding` or `Expect`, and no `Connection`
///   other than `keep-alive`;
/// - a body that reads as the route's message (``SendRoute/message(from:)``), or as a valid
///   client and meta whose URL is minted in place (``ImHelper/connectURLInPlace(for:meta:)``:
///   an HS256 secret);
/// - no answer of the router's still being written, and the node not shutting down.
///
/// Every other request goes on to Hummingbird unchanged (one whose body it read and found
/// wanting, as it came), so the router decides every refusal and names every fault. The lane
/// answers only with a send's outcome — its result, or the error the send failed with, written
/// as ``APIErrorMiddleware`` writes it — or with a connect URL.
///
/// Answers keep the requests' order: whatever arrives while the lane's send is on its way — a
/// request (a pipelining client), the client closing its side, the node shutting down, a
/// decoding error — is held until that send is answered, so Hummingbird neither answers nor
/// closes ahead of it; reading stops while anything is held, so what is held is at most what
/// one read brought. The lane holds one request body at most, of at most
/// ``APIRoutes/maximumBodyBytes``; a body cut short by the client closing its side goes on to
/// the router as it came. Once the node shuts down (`ChannelShouldQuiesceEvent`) it takes no
/// more requests.
final class APIFastLane: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// What the lane needs from the API: the same for every connection.
    struct Settings: Sendable {
        /// Where sends go.
        let helper: ImHelper
        /// The API key, or `nil` for an API on loopback without one.
        let apiKey: [UInt8]?
        /// The `Server` header of answers (Hummingbird's `serverName`).
        let serverName: String
    }

    /// A request the lane may take, told from its method and path.
    enum Route: Equatable {
        /// A single send.
        case send(SendRoute)
        /// `POST /v1/connect-url`.
        case connectURL

        /// The route of a `POST` to `path`, or `nil` when it is not exactly one the lane takes.
        init?(postTo path: String) {
            if path == "/v1/connect-url" {
                self = .connectURL
            } else if let send = SendRoute(postTo: path) {
                self = .send(send)
            } else {
                return nil
            }
        }
    }

    /// Something that reaches the lane from the decoder's side.
    private enum Arrival {
        case part(HTTPServerRequestPart)
        /// A user event: the client closing its side (`ChannelEvent.inputClosed`), the node
        /// shutting down (`ChannelShouldQuiesceEvent`)…
        case event(Any)
        /// An error, such as the decoder's for bytes that are not HTTP.
        case error(any Error)
    }

    private enum State {
        /// Between requests.
        case idle
        /// Passing a request on to the router, until its end.
        case passing
        /// Reading the body (``body``) of a request it may take.
        case reading(HTTPRequestHead, Route)
        /// Waiting for a send to answer.
        case sending
    }

    private let settings: Settings
    private let logger: Logger
    private var state = State.idle
    /// The body read so far while ``State/reading(_:_:)``.
    private var body: ByteBuffer?
    /// Requests passed to the router whose answer is not written in full yet.
    private var routerAnswersDue = 0
    /// What arrived while a send was on its way, delivered in order once it is answered.
    private var held = CircularBuffer<Arrival>()
    /// Whether the channel asked to read while parts were held.
    private var readPending = false
    /// Whether the node is shutting down (the lane takes no more requests).
    private var isQuiescing = false
    /// Whether the quiesce event waits for the lane's request to be answered.
    private var isQuiesceHeld = false
    /// Whether the handler is in a pipeline still (a send answering after it was removed
    /// writes nothing).
    private var isAdded = false

    init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        isAdded = true
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        isAdded = false
        state = .idle
        body = nil
        held.removeAll()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if isHolding {
            held.append(.part(part))
        } else {
            handle(part, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if isHolding {
            held.append(.event(event))
        } else {
            handle(event: event, context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if isHolding {
            held.append(.error(error))
        } else {
            handle(error: error, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        held.removeAll()
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        guard held.isEmpty else {
            readPending = true
            return
        }
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Only the router's answers pass here: the lane's own are written from its context.
        if case .end = unwrapOutboundIn(data) { routerAnswersDue = max(0, routerAnswersDue - 1) }
        context.write(data, promise: promise)
    }

    /// Whether what arrives now waits: while a send is on its way (the router must not see,
    /// or answer, anything after it first), and behind what already waits.
    private var isHolding: Bool {
        if case .sending = state { return true }
        return !held.isEmpty
    }

    private func handle(event: Any, context: ChannelHandlerContext) {
        if event is ChannelShouldQuiesceEvent {
            isQuiescing = true
            if case .reading = state {
                // Passed on once the request it reads is answered.
                isQuiesceHeld = true
                return
            }
        } else if case .reading(let head, _) = state {
            // The client closed its side (or something else happened) in the middle of a body:
            // the request can no longer complete, so the router gets it as it came, then this.
            passUnfinished(head, context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func handle(error: any Error, context: ChannelHandlerContext) {
        if case .reading(let head, _) = state { passUnfinished(head, context: context) }
        context.fireErrorCaught(error)
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch (state, part) {
        case (.idle, .head(let head)):
            if !isQuiescing, routerAnswersDue == 0, let route = takenRoute(of: head) {
                state = .reading(head, route)
            } else {
                state = .passing
                routerAnswersDue += 1
                context.fireChannelRead(wrapInboundOut(part))
            }
        case (.reading, .body(let bytes)):
            if body == nil {
                body = bytes
            } else {
                body?.writeImmutableBuffer(bytes)
            }
        case (.reading(let head, let route), .end(let trailers)):
            let read = body.take()
            guard trailers == nil, let read else { return pass(head, read, trailers, context: context) }
            switch route {
            case .send(let send):
                guard let message = try? send.message(from: RequestBody(read)) else {
                    return pass(head, read, trailers, context: context)
                }
                self.send(message, along: send, context: context)
            case .connectURL:
                guard let url = try? connectURL(from: RequestBody(read)) else {
                    return pass(head, read, trailers, context: context)
                }
                var answer = context.channel.allocator.buffer(capacity: url.utf8.count + 16)
                answer.writeConnectURL(url)
                state = .idle
                write(.ok, answer, context: context)
            }
        case (.passing, .end):
            state = .idle
            context.fireChannelRead(wrapInboundOut(part))
        case (.passing, _), (.idle, _), (.reading, .head), (.sending, _):
            // The rest of a request on its way to the router; else parts the decoder does not
            // deliver (held parts never reach here while sending), which the router refuses.
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    /// The route of the request `head` begins when the lane takes it.
    private func takenRoute(of head: HTTPRequestHead) -> Route? {
        guard head.method == .POST, head.version == .http1_1, let route = Route(postTo: head.uri) else {
            return nil
        }
        let headers = head.headers
        guard !headers.contains(name: "transfer-encoding"), !headers.contains(name: "expect"),
            !headers.contains(name: "connection") || headers["connection"].allSatisfy({ $0 == "keep-alive" }),
            let type = Self.value(of: "content-type", in: headers), LoopbackNames.isJSON(contentType: type),
            let length = headers.first(name: "content-length").flatMap({ Int($0) }),
            (1...APIRoutes.maximumBodyBytes).contains(length)
        else { return nil }
        if let key = settings.apiKey {
            let admitted = APIKeyMiddleware<BasicRequestContext>.admits(
                authorization: Self.value(of: "authorization", in: headers),
                apiKey: headers.first(name: "x-api-key"), key: key)
            guard admitted else { return nil }
        } else {
            let refusal = LoopbackOnlyMiddleware<BasicRequestContext>.refusal(
                authority: headers.first(name: "host"), origin: Self.value(of: "origin", in: headers))
            guard refusal == nil else { return nil }
        }
        return route
    }

    /// The values of the field `name`, joined as HTTP types join them for the router.
    private static func value(of name: String, in headers: HTTPHeaders) -> String? {
        guard let first = headers.first(name: name) else { return nil }
        let values = headers[name]
        return values.count == 1 ? first : values.joined(separator: ", ")
    }

    /// Passes on to the router the head and the body so far of a request that cannot end.
    private func passUnfinished(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        state = .passing
        routerAnswersDue += 1
        context.fireChannelRead(wrapInboundOut(.head(head)))
        if let read = body.take() { context.fireChannelRead(wrapInboundOut(.body(read))) }
    }

    /// Passes a request it read on to the router, as it came.
    private func pass(
        _ head: HTTPRequestHead, _ body: ByteBuffer?, _ trailers: HTTPHeaders?, context: ChannelHandlerContext
    ) {
        state = .idle
        routerAnswersDue += 1
        context.fireChannelRead(wrapInboundOut(.head(head)))
        if let body { context.fireChannelRead(wrapInboundOut(.body(body))) }
        context.fireChannelRead(wrapInboundOut(.end(trailers)))
    }

    /// The URL for the client and meta `body` names (read as the router reads them); `nil` when the
    /// URL cannot be minted in place.
    private func connectURL(from body: RequestBody) throws -> String? {
        let request = try body.connectURLRequest()
        return try settings.helper.connectURLInPlace(for: request.client, meta: request.meta)
    }

    private func send(_ message: OutgoingMessage, along route: SendRoute, context: ChannelHandlerContext) {
        state = .sending
        let promise = context.eventLoop.makePromise(of: Result<SendResult, any Error>.self)
        settings.helper.submit([message]) { results in
            promise.succeed(results.first ?? .failure(CancellationError()))
        }
        promise.futureResult.assumeIsolated().whenSuccess { result in
            guard self.isAdded else { return }
            self.answer(result, along: route, context: context)
        }
    }

    private func answer(_ result: Result<SendResult, any Error>, along route: SendRoute, context: ChannelHandlerContext)
    {
        let status: HTTPResponse.Status
        var body: ByteBuffer
        switch result {
        case .success(let sent):
            status = .ok
            body = context.channel.allocator.buffer(capacity: 64)
            body.writeSendResult(sent, withOffline: route.answersOffline)
        case .failure(let error):
            let refusal = APIError(describing: error, logger: logger)
            status = refusal.status
            body = refusal.body
        }
        state = .idle
        write(status, body, context: context)
        deliverHeld(context: context)
    }

    /// Writes an answer of `status` with the JSON `body`.
    private func write(_ status: HTTPResponse.Status, _ body: ByteBuffer, context: ChannelHandlerContext) {
        // The fields, in order, of the router's answers.
        var headers = HTTPHeaders()
        headers.reserveCapacity(4)
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Date", value: HTTPDate.now)
        headers.add(name: "Server", value: settings.serverName)
        let head = HTTPResponseHead(
            version: .http1_1, status: HTTPResponseStatus(statusCode: status.code, reasonPhrase: status.reasonPhrase),
            headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Delivers what was held while a send was on its way, in order, until a request starts a
    /// send again; then the quiesce event if it waited, and a read if one was asked for.
    private func deliverHeld(context: ChannelHandlerContext) {
        guard !held.isEmpty || isQuiesceHeld || readPending else { return }
        // Outside a read, so what goes on to the router is followed by the read-complete that
        // makes Hummingbird's async channel hand it on.
        defer { context.fireChannelReadComplete() }
        while let arrival = held.popFirst() {
            switch arrival {
            case .part(let part): handle(part, context: context)
            case .event(let event): handle(event: event, context: context)
            case .error(let error): handle(error: error, context: context)
            }
            if case .sending = state { return }
        }
        // Quiescing, it took none of them: each went to the router, which answers them first.
        if isQuiesceHeld {
            isQuiesceHeld = false
            context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        if readPending {
            readPending = false
            context.read()
        }
    }
}
