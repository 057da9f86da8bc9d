import ImCore
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Turns a WebSocket upgrade request on the node's path into a connection, in one pass on the
/// channel's loop.
///
/// It sits where NIO's `HTTPServerUpgradeHandler` would, behind NIO's HTTP parser, and does the
/// same job for the one protocol the node speaks: the request is checked (WebSocket headers,
/// then the ``Gatekeeper``), the HTTP handlers are swapped for NIO's WebSocket codec with
/// synchronous pipeline operations, and the `101` leaves with the connection's `ready` frame.
/// NIO's generic upgrader runs a chain of about a dozen futures per upgrade; on a node taking
/// thousands of handshakes a second that chain was a fifth of the handshake's CPU.
///
/// A request that is not an upgrade, and a refused one (its status and reason left in the
/// ``HandshakeState`` for ``PublicHTTPHandler``), are passed on and this handler leaves the
/// pipeline. Bytes that follow an upgrade request (a client may send its first frame at once)
/// stay in NIO's parser, which stops at such a request, and it hands them on when it leaves the
/// pipeline: after this handler did, so they reach the WebSocket decoder.
final class WebSocketUpgradeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The HTTP handlers the upgrade removes, in the order they are removed.
    struct HTTPHandlers {
        var pipelining: HTTPServerPipelineHandler
        var errors: HTTPServerProtocolErrorHandler
        var decoder: ByteToMessageHandler<HTTPRequestDecoder>
        var encoder: HTTPResponseEncoder
        var routes: PublicHTTPHandler
    }

    private enum Phase {
        /// Waiting for the first request head.
        case idle
        /// The token is being checked; `verdict` is set when that finished, `ended` once the
        /// request's end arrived. The upgrade happens when both are there.
        case admitting(head: HTTPRequestHead, verdict: Admission?, ended: Bool)
        /// Swapping the pipeline.
        case upgrading
        /// Not an upgrade (or refused): passing everything on until removed.
        case passing
        /// The socket closed while the token was checked: the verdict only gives back places.
        case closed
    }

    private let core: NodeCore
    private let handshake: HandshakeState
    private let handlers: HTTPHandlers
    private var phase = Phase.idle
    private var gatekeeper: Gatekeeper { core.gatekeeper }

    init(core: NodeCore, handshake: HandshakeState, handlers: HTTPHandlers) {
        self.core = core
        self.handshake = handshake
        self.handlers = handlers
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch phase {
        case .idle:
            requestStarted(context: context, part: unwrapInboundIn(data))
        case .admitting(let head, let verdict, false):
            guard case .end = unwrapInboundIn(data) else { return }  // an upgrade request has no body
            phase = .admitting(head: head, verdict: verdict, ended: true)
            if let verdict { decide(verdict, head: head, context: context) }
        case .admitting, .upgrading, .closed:
            // NIO's parser emits nothing after an upgrade request's end.
            context.close(promise: nil)
        case .passing:
            context.fireChannelRead(data)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .admitting(_, let verdict, _) = phase {
            // A verdict already here is released now; one still coming is released on arrival.
            if verdict != nil { gatekeeper.release(verdict) }
            phase = .closed
        }
        context.fireChannelInactive()
    }

    // MARK: Deciding

    private func requestStarted(context: ChannelHandlerContext, part: HTTPServerRequestPart) {
        guard case .head(let head) = part, Self.asksForWebSocket(head) else {
            return passOn(part, context: context)
        }
        if let problem = WebSocketRequest.problem(in: head) {
            refuse(response: problem, cause: .malformedRequest)
            return passOn(part, context: context)
        }
        let target = RequestTarget(head.uri)
        guard target.path == core.configuration.path else {
            refuse(HandshakeRefusal(.notFound, "no WebSocket endpoint at this path", cause: .unknownPath))
            return passOn(part, context: context)
        }
        let token: String
        do {
            token = try gatekeeper.precheck(token: target.value(of: "token"), from: context.channel.remoteAddress)
        } catch {
            refuse(error)
            return passOn(part, context: context)
        }
        phase = .admitting(head: head, verdict: nil, ended: false)
        let promise = context.eventLoop.makePromise(of: Admission.self)
        let gatekeeper = self.gatekeeper
        let executor = core.taskExecutor(for: context.eventLoop)
        Task(executorPreference: executor) { promise.succeed(await gatekeeper.admit(token: token)) }
        promise.futureResult.assumeIsolated().whenSuccess { verdict in
            guard case .admitting(let head, nil, let ended) = self.phase else {
                return self.gatekeeper.release(verdict)  // closed meanwhile
            }
            self.phase = .admitting(head: head, verdict: verdict, ended: ended)
            if ended { self.decide(verdict, head: head, context: context) }
        }
    }

    private func decide(_ verdict: Admission, head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch verdict {
        case .admitted(let token):
            // Closed while the token was checked: nothing to upgrade (the token is spent, as
            // it would be for a client that closed right after its upgrade).
            guard context.channel.isActive else {
                phase = .closed
                return gatekeeper.release(verdict)
            }
            handshake.token = token
            upgrade(head, token: token, context: context)
        case .refused(let refusal):
            gatekeeper.release(verdict)
            refuse(refusal)
            phase = .passing
            context.fireChannelRead(wrapInboundOut(.head(head)))
            context.fireChannelRead(wrapInboundOut(.end(nil)))
            context.fireChannelReadComplete()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    private func refuse(_ refusal: HandshakeRefusal) {
        handshake.refusal = .error(refusal.status, refusal.reason)
        core.stats.count(refusal)
    }

    private func refuse(response: PublicResponse, cause: HandshakeRefusal.Cause) {
        handshake.refusal = response
        core.stats.count(HandshakeRefusal(response.status, "", cause: cause))
    }

    private func passOn(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        phase = .passing
        context.fireChannelRead(wrapInboundOut(part))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    // MARK: Upgrading

    private func upgrade(_ head: HTTPRequestHead, token: VerifiedToken, context: ChannelHandlerContext) {
        handshake.deadline?.cancel()
        handshake.deadline = nil
        phase = .upgrading
        let sync = context.pipeline.syncOperations
        // The encoder goes after the 101 passed through it; the parser leaves on a later loop
        // turn (NIO's ByteToMessageHandler always does) and passes what it holds to the WebSocket
        // decoder then.
        sync.removeHandler(handlers.pipelining, promise: nil)
        sync.removeHandler(handlers.errors, promise: nil)
        sync.removeHandler(handlers.decoder, promise: nil)
        let compact = WebSocketRequest.asksForCompactFrames(head)
        context.write(wrapOutboundOut(.head(WebSocketRequest.switchingProtocols(head, compact: compact))), promise: nil)
        sync.removeHandler(handlers.encoder, promise: nil)
        sync.removeHandler(handlers.routes, promise: nil)
        do {
            try sync.addHandler(WebSocketFrameEncoder())
            let maxFrameSize = core.configuration.limits.maxFrameSize
            try sync.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize)))
            let connection = WebSocketConnectionHandler(core: core, compact: compact)
            try sync.addHandler(connection)
            // Hands the connection to the node, whose connection owns the node's and the user's
            // places from then on and gives them back when it closes.
            try connection.open(token)
        } catch {
            core.logger.warning("could not set up a WebSocket pipeline", metadata: ["error": "\(error)"])
            gatekeeper.release(.admitted(token))
            return context.close(promise: nil)
        }
        // Not flushed here: `ready` follows as soon as the connection is registered (in this loop
        // turn with the embedded backplane) and its flush takes the 101 along, one write for both.
        sync.removeHandler(context: context, promise: nil)
    }

    /// Whether `head` asks for a WebSocket (the `Upgrade` header names it); anything else is
    /// plain HTTP for the public routes.
    private static func asksForWebSocket(_ head: HTTPRequestHead) -> Bool {
        head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
    }
}

extension WebSocketUpgradeHandler: @unchecked Sendable {}
