import CoreMetrics
import ImCore
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// The node's second transport: a receive-only Server-Sent Events stream on the public port,
/// for networks that block WebSockets (docs/protocol.md §9).
///
/// A client opens `GET <path>?token=…` with `Accept: text/event-stream` (what a browser's
/// `EventSource` sends) on the same URL it would use for a WebSocket. The request goes through
/// the node's ``Gatekeeper`` like an upgrade (same token, same single use, same limits and the
/// same refusals); an admitted one is answered `200 text/event-stream` and handed to the node
/// with ``NodeCore/open(_:on:output:)``: every frame the node writes (`ready`, `message`,
/// `receipt`, `pong`) is one `data:` event with the frame's JSON. The stream starts with an
/// `event: session` naming the stream's session; the client posts its frames (`ack`, `ping`)
/// to `POST <path>?session=…`, one frame per request, where they count against the same rate
/// limit as WebSocket frames. The node's keepalive is an `event: ping`, and its close an
/// `event: close` with the code and reason, after which the response ends.
///
/// It rides the WebSocket transport's listener (``PublicRoutes/eventStreams``): it has no
/// socket of its own, so ``run()`` only waits for shutdown.
public final class EventStreamTransport: Transport {
    public let name = "eventstream"
    let core: NodeCore
    private let accepting = Atomic<Bool>(true)
    private let sessions = Mutex<[String: Session]>([:])
    /// `imserver_event_streams`: the streams open now (they count in `imserver_connections` too).
    private let openGauge = Gauge(label: "imserver_event_streams")

    /// An open stream, found by its session for the client's posts.
    struct Session: @unchecked Sendable {
        /// The stream's event loop; `handler` is touched only there.
        let loop: any EventLoop
        let handler: EventStreamConnectionHandler
    }

    /// A transport handing its streams to `core`.
    public init(core: NodeCore) {
        self.core = core
    }

    public func run() async throws {
        try? await gracefulShutdown()
    }

    public func stopAccepting() async {
        accepting.store(false, ordering: .releasing)
    }

    /// The routes the transport answers besides its streams: the client's posts, and the CORS
    /// preflight a browser sends before a post with a JSON content type.
    func register(on routes: inout PublicRoutes) {
        let path = core.configuration.path
        routes.add(.POST, path) { [self] request in receive(request) }
        routes.add(.OPTIONS, path) { _ in
            var answer = PublicResponse(status: .noContent, text: "")
            answer.headers.add(name: "access-control-allow-origin", value: "*")
            answer.headers.add(name: "access-control-allow-methods", value: "POST")
            answer.headers.add(name: "access-control-allow-headers", value: "content-type")
            answer.headers.add(name: "access-control-max-age", value: "86400")
            return answer
        }
        routes.eventStreams = self
    }

    /// Whether `head` asks for an event stream: a `GET` of the node's path that accepts
    /// `text/event-stream`.
    func isStreamRequest(_ head: HTTPRequestHead, path: String) -> Bool {
        guard head.method == .GET, path == core.configuration.path else { return false }
        return head.headers[canonicalForm: "accept"].contains { $0.lowercased().hasPrefix("text/event-stream") }
    }

    /// Checks a stream request's token as a WebSocket upgrade's is checked; the verdict arrives
    /// on `loop`. A refusal is counted (`imserver_handshakes_refused_total`) and holds no place;
    /// an admission holds the node's and the user's places until the stream is opened or
    /// ``Gatekeeper/release(_:)`` gives them back.
    func admit(token: String?, from source: SocketAddress?, on loop: any EventLoop) -> EventLoopFuture<Admission> {
        let gatekeeper = core.gatekeeper
        let stats = core.stats
        guard accepting.load(ordering: .acquiring) else {
            let refusal = HandshakeRefusal(
                .serviceUnavailable, "node is shutting down, retry shortly", cause: .notServing)
            stats.count(refusal)
            return loop.makeSucceededFuture(.refused(refusal))
        }
        let checked: String
        do {
            checked = try gatekeeper.precheck(token: token, from: source)
        } catch {
            stats.count(error)
            return loop.makeSucceededFuture(.refused(error))
        }
        let promise = loop.makePromise(of: Admission.self)
        Task(executorPreference: core.taskExecutor(for: loop)) {
            let verdict = await gatekeeper.admit(token: checked)
            if case .refused(let refusal) = verdict {
                gatekeeper.release(verdict)
                stats.count(refusal)
            }
            promise.succeed(verdict)
        }
        return promise.futureResult
    }

    /// Remembers an open stream under `session`.
    func opened(_ handler: EventStreamConnectionHandler, session: String, on loop: any EventLoop) {
        let open = sessions.withLock { sessions in
            sessions[session] = Session(loop: loop, handler: handler)
            return sessions.count
        }
        openGauge.record(open)
    }

    /// Forgets a closed stream.
    func closed(session: String) {
        let open = sessions.withLock { sessions in
            sessions.removeValue(forKey: session)
            return sessions.count
        }
        openGauge.record(open)
    }

    /// How many streams are open.
    public var openStreams: Int { sessions.withLock { $0.count } }

    /// `POST <path>?session=…`: one client frame (`{"type":"ack","id":…}`, `{"type":"ping"}`)
    /// for the stream of that session, on this node. Answered 202 once handed to the stream
    /// (a frame that is not protocol v1 closes the stream with 1007, as it would a WebSocket),
    /// 404 for a session this node does not hold, 413 over ``Limits/maxFrameSize``.
    func receive(_ request: PublicRequest) -> PublicResponse {
        var answer: PublicResponse
        if let id = request.query["session"], let session = sessions.withLock({ $0[id] }) {
            if request.body.readableBytes > core.configuration.limits.maxFrameSize {
                answer = .error(.payloadTooLarge, "frame over \(core.configuration.limits.maxFrameSize) bytes")
            } else {
                let body = request.body
                session.loop.execute { session.handler.clientSent(body) }
                answer = PublicResponse(status: .accepted, text: "")
            }
        } else {
            answer = .error(.notFound, "no event stream with this session on this node")
        }
        answer.headers.add(name: "access-control-allow-origin", value: "*")
        return answer
    }
}

extension EventStreamTransport {
    /// Turns the channel of `context` (whose handler answered `head`) into the stream of the
    /// connection `token` admitted: the HTTP handlers that would read further requests leave,
    /// an ``EventStreamConnectionHandler`` takes the place of `replaced`, answers and hands the
    /// connection to the node. On failure the connection's places are given back and the
    /// socket closed.
    func start(
        _ token: VerifiedToken, answering head: HTTPRequestHead, context: ChannelHandlerContext,
        replacing replaced: any RemovableChannelHandler
    ) {
        let sync = context.pipeline.syncOperations
        let handler = EventStreamConnectionHandler(core: core, transport: self, session: Self.makeSession())
        do {
            try sync.addHandler(handler, position: .after(replaced))
            // The client sends nothing more on this socket: requests it pipelines are not
            // queued (the pipelining handler would stop reading, and so miss its close), and a
            // parse error closes the socket instead of answering 400 into the stream.
            if let pipelining = try? sync.context(handlerType: HTTPServerPipelineHandler.self) {
                sync.removeHandler(context: pipelining, promise: nil)
            }
            if let errors = try? sync.context(handlerType: HTTPServerProtocolErrorHandler.self) {
                sync.removeHandler(context: errors, promise: nil)
            }
            sync.removeHandler(context: context, promise: nil)
            Self.dropUnacknowledged(after: core.configuration.idleTimeout, on: context.channel)
            try handler.open(token, answering: head)
        } catch {
            core.logger.warning("could not set up an event stream", metadata: ["error": "\(error)"])
            core.gatekeeper.release(.admitted(token))
            context.channel.close(promise: nil)
        }
    }

    /// 128 random bits in hex: whoever knows a session can post frames for its stream.
    private static func makeSession() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let half = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - half.utf8.count) + half
        }.joined()
    }

    /// Sets `TCP_USER_TIMEOUT` (Linux): the kernel drops the connection when data it sent
    /// stays unacknowledged for `timeout`, which is how a stream notices a peer that vanished
    /// (its client never answers a keepalive).
    private static func dropUnacknowledged(after timeout: Duration, on channel: any Channel) {
        #if os(Linux)
            let milliseconds =
                timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
            let option = ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: 18))  // TCP_USER_TIMEOUT
            try? channel.syncOptions?.setOption(option, value: .init(clamping: milliseconds))
        #endif
    }
}
