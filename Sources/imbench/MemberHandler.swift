import NIOCore
import NIOWebSocket

/// Why a member did not become ready.
enum MemberError: Error, CustomStringConvertible {
    /// The socket closed before `ready` (with the server's close code, if it sent one).
    case closedBeforeReady(UInt16?)
    /// No `ready` within the timeout.
    case readyTimeout

    var description: String {
        switch self {
        case .closedBeforeReady(let code?): "closed with \(code) before ready"
        case .closedBeforeReady(nil): "closed before ready"
        case .readyTimeout: "no ready frame in time"
        }
    }
}

/// The hot path: one benchmark client's WebSocket after the upgrade.
///
/// Completes `ready` with the arrival time of the `ready` frame; for each `message` frame
/// reads `seq` and `t` from the bytes, records `now − t` and the sequence number; answers
/// WebSocket pings with pongs and the server's close with a close. Confined to its loop.
final class MemberHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let recorder: LoopRecorder
    private var ready: EventLoopPromise<UInt64>?
    private let readyTimeout: TimeAmount
    private var timeout: Scheduled<Void>?
    private var isReady = false
    private var closeCode: UInt16?
    private var closeSent = false
    /// The member's received sequence numbers (read on the loop at the end).
    private(set) var tracker: SeqTracker
    /// The member's channel, once added.
    private(set) var channel: (any Channel)?

    init(recorder: LoopRecorder, tracker: SeqTracker, ready: EventLoopPromise<UInt64>, readyTimeout: TimeAmount) {
        self.recorder = recorder
        self.tracker = tracker
        self.ready = ready
        self.readyTimeout = readyTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        channel = context.channel
        let channel = context.channel
        timeout = context.eventLoop.assumeIsolated().scheduleTask(in: readyTimeout) { [self] in
            guard let ready else { return }
            self.ready = nil
            ready.fail(MemberError.readyTimeout)
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            let now = MonotonicClock.now()
            frame.data.withUnsafeReadableBytes { bytes in
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
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.data)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            guard !closeSent else {
                context.close(promise: nil)
                return
            }
            closeSent = true
            var payload = frame.data
            closeCode = payload.readInteger(as: UInt16.self)
            var reply = context.channel.allocator.buffer(capacity: 2)
            reply.writeInteger(closeCode ?? 1000)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(),
                                                                 data: reply)))
                .whenComplete { _ in channel.close(promise: nil) }
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        if let ready {
            self.ready = nil
            ready.fail(MemberError.closedBeforeReady(closeCode))
        }
        if isReady {
            recorder.open.subtract(1, ordering: .relaxed)
            if !recorder.closing { recorder.dropped.add(1, ordering: .relaxed) }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Sends a normal close frame (once); the server answers and closes the socket.
    func sendClose() {
        guard let channel, channel.isActive, !closeSent else { return }
        closeSent = true
        var payload = channel.allocator.buffer(capacity: 2)
        payload.writeInteger(UInt16(1000))
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: payload)
        channel.writeAndFlush(frame, promise: nil)
    }

    private func becomeReady(at now: UInt64) {
        guard !isReady else { return }
        isReady = true
        recorder.members.append(self)
        recorder.open.add(1, ordering: .relaxed)
        timeout?.cancel()
        timeout = nil
        if let ready {
            self.ready = nil
            ready.succeed(now)
        }
    }
}
