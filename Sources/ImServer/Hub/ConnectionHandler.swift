import ImCore
import Logging
import NIOCore
import NIOWebSocket

/// Where a receipt for an acknowledged message goes.
struct AckRoute: Sendable {
    /// The message's sender.
    var sender: ClientID
    /// The nodes the sender was connected to.
    var senderNodes: [NodeID]
}

/// One client's WebSocket connection: reads its frames, writes encoded server frames, and
/// enforces the per-connection limits. Lives on its channel's event loop.
final class ConnectionHandler: ChannelInboundHandler, RemovableChannelHandler, FlushTarget {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// The connection as Presence knows it.
    let record: ConnectionRecord
    var client: ClientID { record.client }

    /// The shard of the connection's event loop.
    let hub: LoopHub
    private let core: NodeCore
    private let limits: Limits
    private var context: ChannelHandlerContext?
    /// The context of the frame encoder: writing there sends pre-encoded frame bytes as they are.
    private var rawContext: ChannelHandlerContext?
    private var bucket: TokenBucket
    private var batch = WriteBatch()
    private var allocator = ByteBufferAllocator()
    private var backlog = CircularBuffer<ByteBuffer>(initialCapacity: 1)
    private var backlogBytes = 0
    private var unwritableSince: NIODeadline?
    private var pendingAcks: [String: AckRoute] = [:]
    private var ackOrder = CircularBuffer<String>(initialCapacity: 1)

    /// When the client last sent any frame.
    var lastSeen = NIODeadline.now()
    /// Whether the handler is on the loop's list of connections to flush.
    var needsFlush = false
    /// The connection's millisecond slot on its loop's flush wheel.
    let flushPhase: Int
    /// When the loop last flushed this connection.
    private(set) var lastFlush = NIODeadline.uptimeNanoseconds(0)
    /// Whether a close was started (or the channel closed); nothing more is written but the close frame.
    private(set) var isClosing = false
    /// Whether `ready` was sent; frames for the client wait in the backlog until then, so
    /// `ready` is always the first frame a client receives.
    private var isReady = false

    init(record: ConnectionRecord, hub: LoopHub, core: NodeCore, limits: Limits) {
        self.record = record
        self.hub = hub
        self.core = core
        self.limits = limits
        self.flushPhase = hub.makeFlushPhase()
        self.bucket = TokenBucket(rate: limits.messagesPerSecond, burst: limits.messageBurst)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        allocator = context.channel.allocator
        rawContext = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
        core.opened(self, on: context.eventLoop)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosing = true
        _ = batch.take()
        backlog.removeAll()
        hub.remove(self)
        core.closed(self)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastSeen = .now()
        switch frame.opcode {
        case .text:
            handleText(frame.unmaskedData)
        case .binary:
            close(.unsupportedData)
        case .ping:
            guard !isClosing else { return }
            writeBatch()
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)),
                                  promise: nil)
        case .connectionClose:
            receivedClose(frame, context: context)
        default:
            break
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            drainBacklog(context: context)
        } else if unwritableSince == nil {
            let since = NIODeadline.now()
            unwritableSince = since
            context.eventLoop.scheduleTask(in: .nanoseconds(Int64(limits.slowConsumerTimeout.nanoseconds))) { [self] in
                if unwritableSince == since { slowConsumer() }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case NIOWebSocketError.invalidFrameLength,
            NIOWebSocketFrameAggregator.Error.accumulatedFrameSizeIsTooLarge,
            NIOWebSocketFrameAggregator.Error.nonFinalFragmentSizeIsTooSmall,
            NIOWebSocketFrameAggregator.Error.tooManyFragments:
            close(.messageTooBig)
        case is NIOWebSocketError:
            close(.invalidPayload, reason: "protocol error")
        default:
            core.logger.debug("connection error", metadata: ["client": "\(client)", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    // MARK: Writing

    /// Writes an encoded frame (not flushed: the loop flushes once per batch, and frames
    /// written meanwhile leave together in one ``WriteBatch``).
    func write(_ frame: ServerFrame) {
        guard !isClosing, rawContext != nil else { return }
        if isReady && unwritableSince == nil && backlog.isEmpty {
            batch.append(frame.bytes, allocator: allocator)
            hub.markNeedsFlush(self)
        } else {
            backlog.append(frame.bytes)
            backlogBytes += frame.bytes.readableBytes
            if backlogBytes > limits.maxQueuedBytes { slowConsumer() }
        }
    }

    /// Writes a frame that asks for an `ack`, remembering where the `acked` receipt goes.
    func write(_ frame: ServerFrame, awaitingAckOf messageID: String, route: AckRoute) {
        guard !isClosing else { return }
        if pendingAcks.updateValue(route, forKey: messageID) == nil {
            ackOrder.append(messageID)
            if ackOrder.count > limits.pendingAcks, let oldest = ackOrder.popFirst() {
                pendingAcks[oldest] = nil
            }
        }
        write(frame)
    }

    /// Sends `ready` ahead of anything that waited for it; from now on writes go straight out.
    func markReady(_ ready: ServerFrame) {
        guard !isClosing, let context, let rawContext else { return }
        isReady = true
        rawContext.write(NIOAny(ready.bytes), promise: nil)
        hub.markNeedsFlush(self)
        if !backlog.isEmpty && context.channel.isWritable { drainBacklog(context: context) }
    }

    /// Completes when the connection's channel has closed.
    var closeFuture: EventLoopFuture<Void>? { context?.channel.closeFuture }

    /// Writes and flushes what ``write(_:)`` gathered.
    func flush(at now: NIODeadline) {
        needsFlush = false
        lastFlush = now
        writeBatch()
        context?.flush()
    }

    /// Hands the gathered frames to the channel (unflushed), ahead of a frame written directly.
    private func writeBatch() {
        guard let bytes = batch.take(), let rawContext else { return }
        rawContext.write(NIOAny(bytes), promise: nil)
    }

    /// Sends a WebSocket ping carrying `payload`.
    func ping() {
        guard !isClosing, let context else { return }
        writeBatch()
        var payload = context.channel.allocator.buffer(capacity: 8)
        payload.writeInteger(UInt64(NIODeadline.now().uptimeNanoseconds))
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: payload)), promise: nil)
    }

    private func drainBacklog(context: ChannelHandlerContext) {
        guard let rawContext else { return }
        while context.channel.isWritable, let bytes = backlog.popFirst() {
            backlogBytes -= bytes.readableBytes
            rawContext.write(NIOAny(bytes), promise: nil)
        }
        context.flush()
        if backlog.isEmpty && context.channel.isWritable {
            unwritableSince = nil
            backlogBytes = 0
        }
    }

    // MARK: Closing

    /// Starts a close: sends a close frame and closes the socket once the client answers, or
    /// after `grace` at the latest.
    func close(_ code: CloseCode, reason: String? = nil, grace: Duration = .seconds(2)) {
        guard !isClosing, let context else { return }
        isClosing = true
        writeBatch()
        backlog.removeAll()
        backlogBytes = 0
        core.count(close: code)
        var data = context.channel.allocator.buffer(capacity: 32)
        data.writeInteger(code.rawValue)
        data.writeString(String((reason ?? code.reason).utf8.prefix(120)) ?? code.reason)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .nanoseconds(Int64(grace.nanoseconds))) {
            channel.close(promise: nil)
        }
    }

    private func slowConsumer() {
        guard !isClosing else { return }
        core.logger.info("closing slow consumer", metadata: ["client": "\(client)", "queued": "\(backlogBytes)"])
        close(.slowConsumer, grace: limits.slowConsumerTimeout)
    }

    private func receivedClose(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        if isClosing {
            context.close(promise: nil)
            return
        }
        isClosing = true
        writeBatch()
        var data = frame.unmaskedData
        let code = data.readInteger(as: UInt16.self) ?? CloseCode.normal.rawValue
        var reply = context.channel.allocator.buffer(capacity: 2)
        reply.writeInteger(code)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reply)))
            .whenComplete { _ in channel.close(promise: nil) }
    }

    // MARK: Client frames

    /// Handles one client frame. Acks of messages the node asked to be acked are free (their
    /// number is bounded by what the node sent); every other frame counts against the rate limit.
    private func handleText(_ payload: ByteBuffer) {
        guard !isClosing else { return }
        let frame: ClientFrame
        do {
            frame = try ClientFrame(parsing: payload)
        } catch {
            close(.invalidPayload, reason: error.description)
            return
        }
        if case .ack(let messageID) = frame, let route = pendingAcks.removeValue(forKey: messageID) {
            core.acknowledged(messageID, by: client, route: route)
            return
        }
        guard bucket.take() else {
            close(.tooManyMessages)
            return
        }
        if case .ping = frame { write(ServerFrame.pong) }
    }
}


/// Confined to its channel's event loop: other threads reach it only through `execute`.
extension ConnectionHandler: @unchecked Sendable {}
