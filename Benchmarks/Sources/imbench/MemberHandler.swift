import NIOCore

/// Why a member did not become ready.
enum MemberError: Error, CustomStringConvertible {
    /// The socket closed before `ready` (with the server's close code, if it sent one).
    case closedBeforeReady(UInt16?)
    /// No `ready` within the timeout.
    case readyTimeout
    /// The server's bytes were not HTTP or WebSocket as expected.
    case protocolError(String)

    var description: String {
        switch self {
        case .closedBeforeReady(let code?): "closed with \(code) before ready"
        case .closedBeforeReady(nil): "closed before ready"
        case .readyTimeout: "no ready frame in time"
        case .protocolError(let what): "protocol error: \(what)"
        }
    }
}

/// How a member's connection attempt ended.
enum MemberOutcome: Sendable {
    /// Upgraded and `ready` arrived at this time (CLOCK_MONOTONIC nanoseconds).
    case ready(UInt64)
    /// The server answered without upgrading: its status and the first line of its reason.
    case refused(status: UInt, reason: String)

    /// Where an attempt's outcome goes: completed once, by whichever comes first (the
    /// handler, or the connect failing before the handler saw the socket). Loop-confined.
    final class Slot: @unchecked Sendable {
        private var promise: EventLoopPromise<MemberOutcome>?
        /// Completes when the outcome is known.
        let futureResult: EventLoopFuture<MemberOutcome>

        init(promise: EventLoopPromise<MemberOutcome>) {
            self.promise = promise
            futureResult = promise.futureResult
        }

        /// Whether no outcome was given yet.
        var isPending: Bool { promise != nil }

        /// Gives the outcome, unless one was given.
        func succeed(_ outcome: MemberOutcome) {
            promise?.succeed(outcome)
            promise = nil
        }

        /// Fails the attempt, unless an outcome was given.
        func fail(_ error: any Error) {
            promise?.fail(error)
            promise = nil
        }
    }
}

/// The hot path: one benchmark client's socket, from the upgrade request to the last frame.
///
/// Writes the upgrade request when the socket connects, reads the response head, then parses
/// WebSocket frames in place (``WireFrame``): for each `message` frame reads `seq` and `t`
/// from the bytes and records `now − t`; completes `outcome` on `ready`; answers pings and the
/// server's close. No HTTP or WebSocket codec handlers: a client that costs less than the
/// server it measures. Confined to its loop.
final class MemberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Waiting for the response head.
        case handshaking
        /// Refused: reading the body until the server closes.
        case refused(status: UInt)
        /// Upgraded: reading frames.
        case open
    }

    static let maxFrameSize = 1 << 20
    private static let headEnd = Array("\r\n\r\n".utf8)

    let recorder: LoopRecorder
    private let request: ByteBuffer
    private let outcome: MemberOutcome.Slot
    private let readyTimeout: TimeAmount
    private var timeout: Scheduled<Void>?
    private var state = State.handshaking
    /// Bytes of an incomplete response head or frame.
    private var pending: ByteBuffer?
    private var isReady = false
    private var closeCode: UInt16?
    private var closeSent = false
    /// The member's received sequence numbers (read on the loop at the end).
    var tracker: SeqTracker
    /// The member's channel, once added.
    private(set) var channel: (any Channel)?
    /// Against a peer (``Peer``): what the member sends once upgraded, in the peer's protocol
    /// (and what stands for `ready`), and the peer's protocol bytes not yet parsed.
    let peerGreeting: PeerGreeting?
    var peerBytes: ByteBuffer?

    /// A member that sends `request` (the complete upgrade request) once connected.
    init(
        recorder: LoopRecorder, tracker: SeqTracker, request: ByteBuffer, outcome: MemberOutcome.Slot,
        readyTimeout: TimeAmount, peerGreeting: PeerGreeting? = nil
    ) {
        self.peerGreeting = peerGreeting
        self.recorder = recorder
        self.tracker = tracker
        self.request = request
        self.outcome = outcome
        self.readyTimeout = readyTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        self.channel = channel
        timeout = context.eventLoop.assumeIsolated().scheduleTask(in: readyTimeout) { [self] in
            fail(MemberError.readyTimeout)
            channel.close(promise: nil)
        }
        if context.channel.isActive { context.writeAndFlush(wrapOutboundOut(request), promise: nil) }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var held = pending {
            pending = nil
            held.writeBuffer(&bytes)
            bytes = held
        }
        switch state {
        case .handshaking: readHead(&bytes, context: context)
        case .refused: break
        case .open: readFrames(&bytes, context: context)
        }
        if bytes.readableBytes > 0 { pending = bytes }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .refused(let status) = state, outcome.isPending {
            let reason = pending.map { String(buffer: $0) }?.split(whereSeparator: \.isNewline).first.map(String.init)
            outcome.succeed(.refused(status: status, reason: reason ?? ""))
        }
        fail(MemberError.closedBeforeReady(closeCode))
        if isReady {
            recorder.open.subtract(1, ordering: .relaxed)
            if !recorder.closing { recorder.dropped.add(1, ordering: .relaxed) }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    /// Sends a normal close frame (once); the server answers and closes the socket.
    func sendClose() {
        guard let channel, channel.isActive, !closeSent, isReady else { return }
        closeSent = true
        var payload = channel.allocator.buffer(capacity: 2)
        payload.writeInteger(UInt16(1000))
        var frame = channel.allocator.buffer(capacity: 8)
        WireFrame.writeControl(WireFrame.close, payload: payload, mask: .random(in: .min ... .max), into: &frame)
        channel.writeAndFlush(frame, promise: nil)
    }

    // MARK: Reading

    private func readHead(_ bytes: inout ByteBuffer, context: ChannelHandlerContext) {
        guard let (length, status) = bytes.withUnsafeReadableBytes(Self.responseHead) else {
            if bytes.readableBytes > 16384 { protocolError("response head over 16 KiB", context: context) }
            return
        }
        guard let status else { return protocolError("not an HTTP/1.1 response", context: context) }
        bytes.moveReaderIndex(forwardBy: length)
        guard status == 101 else {
            state = .refused(status: status)
            return
        }
        state = .open
        switch peerGreeting {
        case .nats(let greeting)?:
            reply(WireFrame.binary, greeting, context: context, masked: true)
            context.flush()
        case .centrifuge(let greeting, _)?:
            reply(WireFrame.text, greeting, context: context, masked: true)
            context.flush()
        case nil:
            break
        }
        readFrames(&bytes, context: context)
    }

    /// The length of the response head at the start of `raw` and its status (`nil` when it is not
    /// HTTP/1.1), or `nil` while the head is incomplete.
    static func responseHead(in raw: UnsafeRawBufferPointer) -> (length: Int, status: UInt?)? {
        // `\n` is the rarer byte of the two.
        guard let length = raw.end(of: headEnd, anchoredAt: 1) else { return nil }
        let prefix = "HTTP/1.1 ".utf8
        guard length >= prefix.count + 3, raw.prefix(prefix.count).elementsEqual(prefix) else { return (length, nil) }
        var status: UInt = 0
        for byte in raw[prefix.count..<prefix.count + 3] {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return (length, nil) }
            status = status * 10 + UInt(byte - UInt8(ascii: "0"))
        }
        return (length, status)
    }

    private func readFrames(_ bytes: inout ByteBuffer, context: ChannelHandlerContext) {
        var written = false
        while bytes.readableBytes > 0 {
            let header: WireFrame.Header?
            do {
                header = try bytes.withUnsafeReadableBytes { raw throws(WireFrame.ParseError) in
                    try WireFrame.header(in: raw, maxPayload: Self.maxFrameSize)
                }
            } catch {
                return protocolError("\(error)", context: context)
            }
            guard let header else { break }
            guard header.mask == nil else { return protocolError("masked server frame", context: context) }
            let payload = bytes.readSlice(length: header.totalLength)?.getSlice(
                at: header.headerLength,
                length: header.payloadLength)
            guard let payload else { break }
            if case .centrifuge(_, let readyID)? = peerGreeting, header.opcode <= WireFrame.binary {
                // Its lines may span a message's fragments (continuation frames).
                guard receivedCentrifuge(payload, endsMessage: header.isFinal, readyID: readyID, context: context)
                else { return }
                continue
            }
            switch header.opcode {
            case WireFrame.text where header.isFinal, WireFrame.binary where header.isFinal:
                switch peerGreeting {
                case .nats?: if receivedNATS(payload, context: context) { written = true }
                case .centrifuge?, nil: received(payload)
                }
            case WireFrame.ping:
                reply(WireFrame.pong, payload, context: context)
                written = true
            case WireFrame.close:
                closeCode = payload.getInteger(at: payload.readerIndex, as: UInt16.self)
                guard !closeSent else {
                    context.close(promise: nil)
                    return
                }
                closeSent = true
                var code = context.channel.allocator.buffer(capacity: 2)
                code.writeInteger(closeCode ?? 1000)
                reply(WireFrame.close, code, context: context)
                let channel = context.channel
                context.flush()
                channel.eventLoop.assumeIsolated().execute { channel.close(promise: nil) }
                return
            default:
                break
            }
        }
        if written { context.flush() }
    }

    @inline(__always)
    private func received(_ payload: ByteBuffer) {
        let now = MonotonicClock.now()
        payload.withUnsafeReadableBytes { bytes in
            switch FrameScanner.kind(of: bytes) {
            case .message:
                guard let (seq, time) = FrameScanner.sequenceAndTime(in: bytes) else { return }
                recorder.record(latencyNanoseconds: now > time ? now - time : 0, at: now)
                tracker.record(seq)
            case .ready:
                becomeReady(at: now)
            case .other:
                break
            }
        }
    }

    func reply(_ opcode: UInt8, _ payload: ByteBuffer, context: ChannelHandlerContext, masked: Bool = false) {
        var frame = context.channel.allocator.buffer(capacity: 8 + payload.readableBytes)
        if masked {
            WireFrame.writeMasked(opcode, payload: payload, mask: .random(in: .min ... .max), into: &frame)
        } else {
            WireFrame.writeControl(opcode, payload: payload, mask: .random(in: .min ... .max), into: &frame)
        }
        context.write(wrapOutboundOut(frame), promise: nil)
    }

    func protocolError(_ what: String, context: ChannelHandlerContext) {
        fail(MemberError.protocolError(what))
        pending = nil
        context.close(promise: nil)
    }

    private func fail(_ error: any Error) {
        outcome.fail(error)
    }

    func becomeReady(at now: UInt64) {
        guard !isReady else { return }
        isReady = true
        recorder.members.append(self)
        recorder.open.add(1, ordering: .relaxed)
        timeout?.cancel()
        timeout = nil
        outcome.succeed(.ready(now))
    }
}
