public import ImCore
public import NIOCore

/// Where a receipt for an acknowledged message goes.
struct AckRoute: Sendable {
    /// The message's sender.
    var sender: ClientID
    /// The nodes the sender was connected to.
    var senderNodes: [NodeID]
}

/// The node's side of one client connection, whatever its transport: what the client may
/// receive and when, its acks, its message rate and its close. ``NodeCore/open(_:on:output:)``
/// makes one for each connection a transport hands over; the transport reports what the client
/// does to it, and the node writes through the transport's ``ConnectionOutput``.
///
/// Confined to its event loop: every member is called there.
///
/// - `ready` is the first frame a client receives: frames for it wait in a backlog until its
///   registration in Presence finished.
/// - While the transport takes no writes, frames wait in the same backlog, bounded by
///   ``Limits/maxQueuedBytes``; a connection over it, or unwritable for longer than
///   ``Limits/slowConsumerTimeout``, is closed as a slow consumer (4008).
/// - Every frame from the client counts against ``Limits/messagesPerSecond`` (4029 beyond it),
///   except acks of messages that asked for one (their number is bounded by what was sent).
public final class NodeConnection: FlushTarget {
    /// The connection as Presence knows it.
    public let record: ConnectionRecord
    var client: ClientID { record.client }

    /// The shard of the connection's event loop.
    let hub: LoopHub
    private let core: NodeCore
    /// The transport's side; dropped once the connection closed (it usually holds this object).
    private var output: (any ConnectionOutput)?
    private var bucket: TokenBucket
    private var backlog = CircularBuffer<ServerFrame>(initialCapacity: 1)
    private var backlogBytes = 0
    private var unwritableSince: NIODeadline?
    private var pendingAcks: [String: AckRoute] = [:]
    private var ackOrder = CircularBuffer<String>(initialCapacity: 1)
    /// Acks the client may send for messages that asked for one but are not in `pendingAcks`
    /// (forgotten as the window moved on, or reported by another node): each such message
    /// earns one ack that does not count against the rate limit, so free acks never outnumber
    /// the messages the node sent.
    private var untrackedAcks = 0

    /// When the client last sent anything.
    var lastSeen = NIODeadline.now()
    /// Whether the connection is on its loop's list of connections to flush.
    var needsFlush = false
    /// The connection's millisecond slot on its loop's flush wheel.
    let flushPhase: Int
    /// When the loop last flushed this connection.
    private(set) var lastFlush = NIODeadline.uptimeNanoseconds(0)
    /// When the first frame waiting for the next flush arrived at the node (or was queued); set
    /// by ``LoopHub/markNeedsFlush(_:)``.
    var queuedSince = NIODeadline.uptimeNanoseconds(0)
    /// Whether a close was started by either side (or the connection closed): nothing more is
    /// written to the client, and what it sends is ignored.
    public private(set) var isClosing = false
    /// Whether ``closed()`` was reported.
    private var isClosed = false
    /// Whether `ready` was sent; frames for the client wait in the backlog until then.
    private var isReady = false

    init(record: ConnectionRecord, hub: LoopHub, core: NodeCore, output: any ConnectionOutput) {
        self.record = record
        self.hub = hub
        self.core = core
        self.output = output
        self.flushPhase = hub.makeFlushPhase()
        let limits = core.configuration.limits
        self.bucket = TokenBucket(rate: limits.messagesPerSecond, burst: limits.messageBurst)
        core.stats.connectionObjectCreated()
    }

    deinit { core.stats.connectionObjectFreed() }

    private var limits: Limits { core.configuration.limits }

    // MARK: What the transport reports

    /// The client sent a text frame of protocol v1 (docs/protocol.md: `ping`, `ack`). A frame
    /// that is not one closes the connection with 1007.
    public func received(text payload: ByteBuffer) {
        lastSeen = .now()
        hub.meters.received()
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
                return core.receipts.acknowledged(messageID, by: client, route: route)
            }
            if untrackedAcks > 0 {
                untrackedAcks -= 1
                return
            }
        }
        guard countAgainstRate() else { return }
        if case .ping = frame, write(ServerFrame.pong) { hub.meters.wrote(ServerFrame.pong) }
    }

    /// The client sent a frame of the transport's own (a WebSocket ping or pong): it counts
    /// against the message rate. Returns whether the transport should act on it (answer a
    /// ping, say): `false` once closing, or when it went over the rate and the node is closing
    /// the connection with 4029.
    public func receivedKeepalive() -> Bool {
        lastSeen = .now()
        hub.meters.received()
        guard !isClosing else { return false }
        return countAgainstRate()
    }

    /// The client sent something that is not a whole frame (a fragment, say): it is not idle.
    public func noteActivity() { lastSeen = .now() }

    /// The transport's ``ConnectionOutput/isWritable`` changed: drain the backlog, or start
    /// the slow-consumer clock.
    public func writabilityChanged() {
        guard let output else { return }
        if output.isWritable {
            drainBacklog()
        } else if unwritableSince == nil {
            let since = NIODeadline.now()
            unwritableSince = since
            hub.eventLoop.scheduleTask(in: .nanoseconds(Int64(limits.slowConsumerTimeout.nanoseconds))) { [self] in
                if unwritableSince == since { slowConsumer() }
            }
        }
    }

    /// The client started closing (a WebSocket close frame): nothing more is written but the
    /// transport's answer.
    public func clientStartedClosing() {
        isClosing = true
        dropQueued()
    }

    /// The connection closed: the node forgets it, unregisters it from Presence and gives its
    /// places back. Report it once; later calls do nothing.
    public func closed() {
        guard !isClosed else { return }
        isClosed = true
        isClosing = true
        dropQueued()
        pendingAcks.removeAll()
        ackOrder.removeAll()
        hub.remove(self)
        core.registrar.closed(self)
        core.slots.releaseConnection(of: client)
        output = nil
    }

    // MARK: Writing

    /// Writes a frame (not flushed: the loop flushes once per batch, so frames written
    /// meanwhile leave together). Returns whether the connection took it: `false` once
    /// closing, or when the frame made it a slow consumer.
    @discardableResult
    func write(_ frame: ServerFrame) -> Bool {
        guard !isClosing, let output else { return false }
        if isReady && unwritableSince == nil && backlog.isEmpty {
            output.write(frame)
            hub.markNeedsFlush(self)
            return true
        }
        backlog.append(frame)
        backlogBytes += frame.bytes.readableBytes
        if backlogBytes > limits.maxQueuedBytes { slowConsumer() }
        return !isClosing
    }

    /// Writes a frame that asks for an `ack`, remembering where the `acked` receipt goes
    /// (`route`), or, without one, that an ack will come that needs no receipt from this node.
    /// Returns whether the connection took it.
    @discardableResult
    func write(_ frame: ServerFrame, awaitingAckOf messageID: String, route: AckRoute?) -> Bool {
        guard !isClosing else { return false }
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
        return write(frame)
    }

    /// Sends `ready` ahead of anything that waited for it; from now on writes go straight out.
    func markReady(_ ready: ServerFrame) {
        guard !isClosing, let output else { return }
        isReady = true
        output.write(ready)
        hub.meters.wrote(ready)
        hub.markNeedsFlush(self)
        if !backlog.isEmpty && output.isWritable { drainBacklog() }
    }

    /// Completes when the connection has closed (`nil` once it did).
    var closeFuture: EventLoopFuture<Void>? { output?.closeFuture }

    /// Flushes what ``write(_:)`` gathered.
    func flush(at now: NIODeadline) {
        needsFlush = false
        lastFlush = now
        hub.meters.flushed(since: queuedSince, now: now)
        output?.flush()
    }

    /// Sends the transport's keepalive, unless the client is not reading.
    func ping() {
        guard !isClosing, let output, output.isWritable else { return }
        output.sendKeepalive()
    }

    private func drainBacklog() {
        guard let output else { return }
        while output.isWritable, let frame = backlog.popFirst() {
            backlogBytes -= frame.bytes.readableBytes
            output.write(frame)
        }
        output.flush()
        if backlog.isEmpty && output.isWritable {
            unwritableSince = nil
            backlogBytes = 0
        }
    }

    private func dropQueued() {
        backlog.removeAll()
        backlogBytes = 0
    }

    // MARK: Closing

    /// Starts a close with `code`: the transport tells the client (after what is queued) and
    /// closes the connection once the client answers, or after `grace` at the latest.
    public func close(_ code: CloseCode, reason: String? = nil, grace: Duration = .seconds(2)) {
        guard !isClosing, let output else { return }
        isClosing = true
        dropQueued()
        core.stats.count(close: code)
        output.close(code: code, reason: reason ?? code.reason, grace: grace)
    }

    private func slowConsumer() {
        guard !isClosing else { return }
        core.logger.info("closing slow consumer", metadata: ["client": "\(client)", "queued": "\(backlogBytes)"])
        close(.slowConsumer, grace: limits.slowConsumerTimeout)
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
}

/// Confined to its event loop: other threads reach it only through `execute`.
extension NodeConnection: @unchecked Sendable {}
