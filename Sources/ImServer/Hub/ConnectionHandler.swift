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
///
/// Reading follows writing: while the channel cannot take writes the handler holds back the
/// socket's reads, so a client that sends without reading (a ping flood, say) stops being read
/// instead of making the node queue answers. A connection that stays unwritable is closed as
/// a slow consumer (4008), so held-back reads never keep a socket beyond
/// ``Limits/slowConsumerTimeout``.
final class ConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler, FlushTarget {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
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
    private var assembler: ClientFrameAssembler
    private var batch = WriteBatch()
    private var allocator = ByteBufferAllocator()
    private var backlog = CircularBuffer<ByteBuffer>(initialCapacity: 1)
    private var backlogBytes = 0
    private var unwritableSince: NIODeadline?
    private var pendingAcks: [String: AckRoute] = [:]
    private var ackOrder = CircularBuffer<String>(initialCapacity: 1)
    /// Acks the client may send for messages that asked for one but are not in `pendingAcks`
    /// (forgotten as the window moved on, or reported by another node): each such message
    /// earns one ack that does not count against the rate limit, so free acks never outnumber
    /// the messages the node sent.
    private var untrackedAcks = 0
    /// A read the channel asked for while it could not take writes.
    private var readHeldBack = false
    /// The payload of the last ping not yet answered (RFC 6455 §5.5.3: answering the most
    /// recent ping is enough), written once the channel takes writes again.
    private var unansweredPing: ByteBuffer?

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
        self.assembler = ClientFrameAssembler(maximumMessageSize: limits.maxFrameSize)
        core.stats.handlerCreated()
    }

    deinit { core.stats.handlerFreed() }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        allocator = context.channel.allocator
        rawContext = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
        core.opened(self, on: context.eventLoop)
    }

    /// Drops the contexts: they hold the pipeline and channel, which hold this handler.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        rawContext = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosing = true
        _ = batch.take()
        backlog.removeAll()
        unansweredPing = nil
        pendingAcks.removeAll()
        ackOrder.removeAll()
        hub.remove(self)
        core.closed(self)
        core.slots.releaseConnection(of: client)
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
        lastSeen = .now()
        let message: ClientFrameAssembler.Output
        do {
            message = try assembler.accept(unwrapInboundIn(data))
        } catch {
            // Nothing more is read from a client that broke the protocol, not even its close.
            return isClosing ? context.close(promise: nil) : close(error.code, reason: error.reason)
        }
        switch message {
        case .text(let payload):
            handleText(payload)
        case .binary:
            close(.unsupportedData)
        case .ping(let payload):
            guard !isClosing, countAgainstRate() else { return }
            answerPing(payload, context: context)
        case .pong:
            guard !isClosing else { return }
            _ = countAgainstRate()
        case .close(let code):
            receivedClose(code: code, context: context)
        case .partial:
            break
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            drainBacklog(context: context)
            if let payload = unansweredPing, !isClosing {
                unansweredPing = nil
                answerPing(payload, context: context)
            }
            if readHeldBack {
                readHeldBack = false
                context.read()
            }
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
        case NIOWebSocketError.invalidFrameLength:
            close(.messageTooBig)
        case is NIOWebSocketError:
            // A control frame fragmented or over 125 bytes, or a frame length NIO cannot take.
            close(.protocolError)
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

    /// Writes a frame that asks for an `ack`, remembering where the `acked` receipt goes
    /// (`route`), or, without one, that an ack will come that needs no receipt from this node.
    func write(_ frame: ServerFrame, awaitingAckOf messageID: String, route: AckRoute?) {
        guard !isClosing else { return }
        guard let route else {
            untrackedAcks += 1
            return write(frame)
        }
        if pendingAcks.updateValue(route, forKey: messageID) == nil {
            ackOrder.append(messageID)
            if ackOrder.count > limits.pendingAcks, let oldest = ackOrder.popFirst() {
                pendingAcks[oldest] = nil
                untrackedAcks += 1
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
        guard !isClosing, let context, context.channel.isWritable else { return }
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

    private func receivedClose(code: UInt16?, context: ChannelHandlerContext) {
        if isClosing {
            context.close(promise: nil)
            return
        }
        isClosing = true
        writeBatch()
        backlog.removeAll()
        backlogBytes = 0
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

    /// Takes a token for a frame that counts against the message rate; closes with 4029 and
    /// returns `false` when none is left.
    private func countAgainstRate() -> Bool {
        guard bucket.take() else {
            close(.tooManyMessages)
            return false
        }
        return true
    }

    // MARK: Client frames

    /// Handles one client frame. Acks of messages the node asked to be acked are free (their
    /// number is bounded by what the node sent, including those it no longer tracks); every
    /// other frame counts against the rate limit.
    private func handleText(_ payload: ByteBuffer) {
        guard !isClosing else { return }
        let frame: ClientFrame
        do {
            frame = try ClientFrame(parsing: payload)
        } catch {
            close(.invalidPayload, reason: error.description)
            return
        }
        if case .ack(let messageID) = frame {
            if let route = pendingAcks.removeValue(forKey: messageID) {
                return core.acknowledged(messageID, by: client, route: route)
            }
            if untrackedAcks > 0 {
                untrackedAcks -= 1
                return
            }
        }
        guard countAgainstRate() else { return }
        if case .ping = frame { write(ServerFrame.pong) }
    }
}

/// Confined to its channel's event loop: other threads reach it only through `execute`.
extension ConnectionHandler: @unchecked Sendable {}
