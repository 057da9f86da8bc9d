import Foundation
import NIOCore
import NIOHTTP1

/// Answers plain HTTP on the public port: refused upgrades (with the gatekeeper's status and
/// reason) and the ``PublicRoutes``. Removed from the pipeline when a connection upgrades.
///
/// Answers follow the reader's pace: a request is answered only while the channel takes
/// writes, and NIO's pipelining handler reads nothing more until that answer has ended, so a
/// client that pipelines requests without reading the answers holds at most the channel's
/// write buffer (``Limits/writeBufferHighWater``) and one answer on the node, and one read's
/// worth of requests in the parser.
final class PublicHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let maximumBody = 64 * 1024

    private let handshake: HandshakeState
    private let routes: PublicRoutes
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var tooLarge = false
    /// A complete request waiting for the channel to take writes.
    private var waiting: (head: HTTPRequestHead, body: ByteBuffer)?

    init(handshake: HandshakeState, routes: PublicRoutes) {
        self.handshake = handshake
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = context.channel.allocator.buffer(capacity: 0)
            tooLarge = false
        case .body(var chunk):
            if (body?.readableBytes ?? 0) + chunk.readableBytes > Self.maximumBody {
                tooLarge = true
            } else {
                body?.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let body = self.body ?? ByteBuffer()
            self.body = nil
            guard context.channel.isWritable else {
                waiting = (head, body)
                return
            }
            respond(to: head, body: body, context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let (head, body) = waiting {
            waiting = nil
            respond(to: head, body: body, context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    private func respond(to head: HTTPRequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        if let refusal = handshake.refusal {
            handshake.refusal = nil
            write(refusal, keepAlive: false, context: context)
            return
        }
        if tooLarge {
            write(.error(.payloadTooLarge, "request body over 64 KiB"), keepAlive: false, context: context)
            return
        }
        let components = URLComponents(string: head.uri)
        let path = components?.path ?? head.uri
        if let streams = routes.eventStreams, streams.isStreamRequest(head, path: path) {
            return startStream(head, streams: streams, context: context)
        }
        guard let handler = routes.handler(for: head.method, path: path) else {
            write(.error(.notFound, "not found: \(path)"), keepAlive: head.isKeepAlive, context: context)
            return
        }
        var query: [String: String] = [:]
        for item in components?.queryItems ?? [] { query[item.name] = item.value ?? "" }
        let request = PublicRequest(method: head.method, path: path, query: query, headers: head.headers, body: body)
        let keepAlive = head.isKeepAlive
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.makeFutureWithTask { await handler(request) }.whenSuccess { response in
            self.write(response, keepAlive: keepAlive, context: bound.value)
        }
    }

    /// Checks an event-stream request's token and, once admitted, hands the socket to the
    /// stream (``EventStreamTransport/start(_:answering:context:replacing:)``, which removes
    /// this handler); a refusal is answered with its status and reason, as an upgrade's is.
    private func startStream(_ head: HTTPRequestHead, streams: EventStreamTransport, context: ChannelHandlerContext) {
        let target = RequestTarget(head.uri)
        let handshake = self.handshake
        streams.admit(token: target.value(of: "token"), from: context.channel.remoteAddress, on: context.eventLoop)
            .assumeIsolated().whenSuccess { verdict in
                switch verdict {
                case .refused(let refusal):
                    self.write(.error(refusal.status, refusal.reason), keepAlive: false, context: context)
                case .admitted(let token):
                    guard context.channel.isActive else { return streams.core.gatekeeper.release(verdict) }
                    handshake.deadline?.cancel()
                    handshake.deadline = nil
                    handshake.token = token
                    streams.start(token, answering: head, context: context, replacing: self)
                }
            }
    }

    private func write(_ response: PublicResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(response.body.readableBytes))
        headers.add(name: "cache-control", value: "no-store")
        headers.add(contentsOf: response.headers)
        if !keepAlive { headers.add(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

extension PublicHTTPHandler: @unchecked Sendable {}
