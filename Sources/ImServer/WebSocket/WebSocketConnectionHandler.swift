import ImCore
import Logging
import NIOCore
import NIOWebSocket

/// The WebSocket side of one client connection: reads the client's frames (checked against
/// RFC 6455 and joined by a ``ClientFrameAssembler``) and reports them to its
/// ``NodeConnection``; writes the node's frames, pings and close as WebSocket frames. It is the
/// connection's ``ConnectionOutput``. Lives on its channel's event loop.
///
/// Frames the node writes between flushes leave together in one ``WriteBatch``; a batch that
/// reaches ``batchLimit`` is handed to the channel at once, so the channel's write-buffer
/// bounds (and so ``ConnectionOutput/isWritable``) see it.
///
/// Reading follows writing: while the channel cannot take writes the handler holds back the
/// socket's reads, so a client that sends without reading (a ping flood, say) stops being read
/// instead of making the node queue answers. A connection that stays unwritable is closed as
/// a slow consumer (4008) by the node, so held-back reads never keep a socket beyond
/// ``Limits/slowConsumerTimeout``.
final class WebSocketConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler, ConnectionOutput {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// The node's side, once ``NodeCore/open(_:on:output:)`` made it (``open(_:)``).
    private var connection: NodeConnection?
    private let core: NodeCore
    private var context: ChannelHandlerContext?
    /// The context of the frame encoder: writing there sends pre-encoded frame bytes as they are.
    private var rawContext: ChannelHandlerContext?
    private var assembler: ClientFrameAssembler
    private var batch = WriteBatch()
    private var allocator = ByteBufferAllocator()
    /// A read the channel asked for while it could not take writes.
    private var readHeldBack = false
    /// The payload of the last ping not yet answered (RFC 6455 §5.5.3: answering the most
    /// recent ping is enough), written once the channel takes writes again.
    private var unansweredPing: ByteBuffer?

    /// Whether the client speaks the compact encoding (docs/protocol.md §9): it gets each
    /// frame's ``ServerFrame/compactBytes`` when the frame has them.
    private let compact: Bool
    /// Whether the node counts this connection in ``NodeCore/compactFrames`` (until it closes).
    private var countedAsCompact = false

    /// The most bytes a batch gathers before it is handed to the channel unflushed.
    static let batchLimit = 64 * 1024

    /// A handler for a connection to `core` (speaking the compact encoding when `compact`);
    /// ``open(_:)`` hands it to the node once the handler is in the pipeline.
    init(core: NodeCore, compact: Bool = false) {
        self.core = core
        self.compact = compact
        self.assembler = ClientFrameAssembler(maximumMessageSize: core.configuration.limits.maxFrameSize)
    }

    /// Hands the connection `token` admitted to the node (on the channel's loop, after the
    /// handler was added); throws when the node cannot take it.
    func open(_ token: VerifiedToken) throws {
        guard let context else { throw TransportError.connectionGone }
        if compact {
            // Before the node makes `ready`, so that it is made in both encodings.
            core.compactFrames.connectionOpened()
            countedAsCompact = true
        }
        connection = try core.open(token, on: context.eventLoop, output: self)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        allocator = context.channel.allocator
        rawContext = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
    }

    /// Drops the contexts: they hold the pipeline and channel, which hold this handler.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        rawContext = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        _ = batch.take()
        unansweredPing = nil
        if countedAsCompact {
            countedAsCompact = false
            core.compactFrames.connectionClosed()
        }
        connection?.closed()
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            readHeldBack = true
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection else { return }
        let message: ClientFrameAssembler.Output
        do {
            message = try assembler.accept(unwrapInboundIn(data))
        } catch {
            // Nothing more is read from a client that broke the protocol, not even its close.
            connection.noteActivity()
            guard !connection.isClosing else { return context.close(promise: nil) }
            return connection.close(error.code, reason: error.reason)
        }
        switch message {
        case .text(let payload):
            connection.received(text: payload)
        case .binary:
            connection.noteActivity()
            connection.close(.unsupportedData)
        case .ping(let payload):
            guard connection.receivedKeepalive() else { return }
            answerPing(payload, context: context)
        case .pong:
            _ = connection.receivedKeepalive()
        case .close(let code):
            connection.noteActivity()
            receivedClose(code: code, context: context)
        case .partial:
            connection.noteActivity()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            connection?.writabilityChanged()
            if let payload = unansweredPing, connection?.isClosing == false {
                unansweredPing = nil
                answerPing(payload, context: context)
            }
            if readHeldBack {
                readHeldBack = false
                context.read()
            }
        } else {
            connection?.writabilityChanged()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case NIOWebSocketError.invalidFrameLength:
            closeOrDrop(.messageTooBig, context: context)
        case is NIOWebSocketError:
            // A control frame fragmented or over 125 bytes, or a frame length NIO cannot take.
            closeOrDrop(.protocolError, context: context)
        default:
            core.logger.debug(
                "connection error", metadata: ["client": "\(connection?.record.client ?? "")", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    private func closeOrDrop(_ code: CloseCode, context: ChannelHandlerContext) {
        guard let connection else { return context.close(promise: nil) }
        connection.close(code)
    }

    // MARK: ConnectionOutput

    func write(_ frame: ServerFrame) {
        guard rawContext != nil else { return }
        batch.append(compact ? frame.compactBytes ?? frame.bytes : frame.bytes, allocator: allocator)
        if batch.byteCount >= Self.batchLimit { writeBatch() }
    }

    func flush() {
        writeBatch()
        context?.flush()
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// A WebSocket ping carrying the loop's time.
    func sendKeepalive() {
        guard let context else { return }
        writeBatch()
        var payload = context.channel.allocator.buffer(capacity: 8)
        payload.writeInteger(UInt64(NIODeadline.now().uptimeNanoseconds))
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: payload)), promise: nil)
    }

    /// A close frame after the batch; the socket closes when the client answers (see
    /// ``receivedClose(code:context:)``) or after `grace`.
    func close(code: CloseCode, reason: String, grace: Duration) {
        guard let context else { return }
        writeBatch()
        var data = context.channel.allocator.buffer(capacity: 32)
        data.writeInteger(code.rawValue)
        data.writeString(String(reason.utf8.prefix(120)) ?? code.reason)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .nanoseconds(Int64(grace.nanoseconds))) {
            channel.close(promise: nil)
        }
    }

    var closeFuture: EventLoopFuture<Void>? { context?.channel.closeFuture }

    // MARK: Frames

    /// Hands the gathered frames to the channel (unflushed), ahead of a frame written directly.
    private func writeBatch() {
        guard let bytes = batch.take(), let rawContext else { return }
        rawContext.write(NIOAny(bytes), promise: nil)
    }

    private func receivedClose(code: UInt16?, context: ChannelHandlerContext) {
        guard let connection, !connection.isClosing else { return context.close(promise: nil) }
        connection.clientStartedClosing()
        writeBatch()
        // Echo the client's code (RFC 6455 §5.5.1); a close without one is answered without one.
        var reply = context.channel.allocator.buffer(capacity: 2)
        if let code { reply.writeInteger(code) }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reply)))
            .whenComplete { _ in channel.close(promise: nil) }
    }

    /// Answers a ping now, or (while the channel takes no writes) once it does.
    private func answerPing(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        guard context.channel.isWritable else {
            unansweredPing = payload
            return
        }
        writeBatch()
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: payload)), promise: nil)
    }
}

/// Confined to its channel's event loop: other threads reach it only through `execute`.
extension WebSocketConnectionHandler: @unchecked Sendable {}
