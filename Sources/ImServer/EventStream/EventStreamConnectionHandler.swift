import ImCore
import Logging
import NIOCore
import NIOHTTP1

/// The Server-Sent Events side of one client connection: the node's frames as `data:` events
/// in one chunked `200 text/event-stream` response, its keepalives as `event: ping`, its close
/// as `event: close`. It is the connection's ``ConnectionOutput``; what the client sends
/// arrives by post (``EventStreamTransport/receive(_:)``) and is handed in with
/// ``clientSent(_:)``. Lives on its channel's event loop.
///
/// The client sends nothing on the stream's socket: a byte after the request closes it.
/// Since the client never answers a keepalive, the socket carries `TCP_USER_TIMEOUT` of the
/// node's idle timeout (a peer that stops acknowledging data is dropped by the kernel), and a
/// keepalive the socket took counts as the client's activity.
final class EventStreamConnectionHandler: ChannelInboundHandler, RemovableChannelHandler, ConnectionOutput {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let core: NodeCore
    private let transport: EventStreamTransport
    /// The stream's session: the client names it in its posts.
    let session: String
    private var connection: NodeConnection?
    private var context: ChannelHandlerContext?
    /// Events written since the last flush.
    private var batch: ByteBuffer?
    /// Whether the response has ended (a close was sent): nothing more is written.
    private var ended = false

    /// The most bytes a batch gathers before it is handed to the channel unflushed.
    static let batchLimit = 64 * 1024

    init(core: NodeCore, transport: EventStreamTransport, session: String) {
        self.core = core
        self.transport = transport
        self.session = session
    }

    /// Answers the request `head` with the stream's head and `event: session`, and hands the
    /// connection `token` admitted to the node (on the channel's loop, after the handler was
    /// added); throws when the node cannot take it.
    func open(_ token: VerifiedToken, answering head: HTTPRequestHead) throws {
        guard let context else { throw TransportError.connectionGone }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/event-stream; charset=utf-8")
        headers.add(name: "cache-control", value: "no-store")
        headers.add(name: "x-accel-buffering", value: "no")  // nginx: pass each event on at once
        headers.add(name: "access-control-allow-origin", value: "*")
        let version = head.version.minor == 0 ? HTTPVersion.http1_0 : .http1_1
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .ok, headers: headers))), promise: nil)
        var event = context.channel.allocator.buffer(capacity: 96)
        let interval = core.configuration.pingInterval.components
        let keepalive = interval.seconds * 1000 + interval.attoseconds / 1_000_000_000_000_000
        event.writeStaticString("event: session\ndata: {\"session\":\"")
        event.writeString(session)
        event.writeStaticString("\",\"keepalive\":")
        event.writeString(String(keepalive))
        event.writeStaticString("}\n\n")
        // Not flushed: `ready` follows once the connection is registered, and its flush takes this along.
        batch = event
        connection = try core.open(token, on: context.eventLoop, output: self)
        transport.opened(self, session: session, on: context.eventLoop)
    }

    /// The client posted `payload` (one frame of protocol v1) for this stream.
    func clientSent(_ payload: ByteBuffer) {
        connection?.received(text: payload)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Drops the context: it holds the pipeline and channel, which hold this handler.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The stream's socket carries nothing from the client after its request.
        connection?.noteActivity()
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        core.logger.debug("event stream error", metadata: ["session": "\(session)", "error": "\(error)"])
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        batch = nil
        ended = true
        transport.closed(session: session)
        connection?.closed()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    // MARK: ConnectionOutput

    func write(_ frame: ServerFrame) {
        guard let context, !ended else { return }
        var events = batch ?? context.channel.allocator.buffer(capacity: 256)
        batch = nil  // `events` is now the only reference, so writing to it does not copy.
        events.writeEvent(json: frame.payload)
        batch = events
        if events.readableBytes >= Self.batchLimit { writeBatch() }
    }

    func flush() {
        writeBatch()
        context?.flush()
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// `event: ping`; once the socket took it, the client counts as active (see the type's
    /// summary).
    func sendKeepalive() {
        guard let context, !ended else { return }
        writeBatch()
        let ping = context.channel.allocator.buffer(staticString: "event: ping\ndata: {}\n\n")
        let connection = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ping)))).whenSuccess {
            connection.value.connection?.noteActivity()
        }
    }

    /// `event: close` with the code and reason after the batch, then the response's end; the
    /// socket closes once that was written, or after `grace`.
    func close(code: CloseCode, reason: String, grace: Duration) {
        guard let context, !ended else { return }
        writeBatch()
        ended = true
        var event = context.channel.allocator.buffer(capacity: 64)
        event.writeStaticString("event: close\ndata: {\"code\":")
        event.writeString(String(code.rawValue))
        event.writeStaticString(",\"reason\":")
        event.writeJSONString(String(reason.utf8.prefix(120)) ?? code.reason)
        event.writeStaticString("}\n\n")
        context.write(wrapOutboundOut(.body(.byteBuffer(event))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        context.eventLoop.scheduleTask(in: .nanoseconds(Int64(grace.nanoseconds))) {
            channel.close(promise: nil)
        }
    }

    var closeFuture: EventLoopFuture<Void>? { context?.channel.closeFuture }

    /// Hands the gathered events to the channel (unflushed) as one chunk.
    private func writeBatch() {
        guard let events = batch, let context else { return }
        batch = nil
        context.write(wrapOutboundOut(.body(.byteBuffer(events))), promise: nil)
    }
}

/// Confined to its channel's event loop: other threads reach it only through `execute`.
extension EventStreamConnectionHandler: @unchecked Sendable {}
