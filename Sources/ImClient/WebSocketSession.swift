import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// One WebSocket connection of an ``ImClient``: the upgrade, the frames it receives, and the
/// frames it sends.
final class WebSocketSession: Sendable {
    /// What the connection receives.
    enum Event: Sendable {
        /// A text frame.
        case text(ByteBuffer)
        /// A binary frame.
        case binary(ByteBuffer)
        /// The server's close frame.
        case close(code: UInt16?, reason: String)
    }

    private let channel: any Channel
    /// Every text and close frame, in order; ends when the socket closes.
    let events: AsyncStream<Event>

    private init(channel: any Channel, events: AsyncStream<Event>) {
        self.channel = channel
        self.events = events
    }

    /// Opens a WebSocket to `url` (`ws://` or `wss://`); throws ``ClientError`` when the URL is
    /// not one or the server refuses the upgrade.
    /// Frames beyond ``ClientConfiguration/eventBufferLimit`` not yet handled are dropped, the
    /// oldest first, and reported to `onDrop`.
    static func open(
        _ url: String, configuration: ClientConfiguration, group: any EventLoopGroup,
        onDrop: @escaping @Sendable () -> Void
    ) async throws -> WebSocketSession {
        let (events, continuation) = AsyncStream<Event>.makeStream(
            bufferingPolicy: .bufferingNewest(max(1, configuration.eventBufferLimit)))
        let maximumFrameSize = configuration.maximumFrameSize
        var settings = WebSocketDialer.Settings(
            trustedAuthority: configuration.trustedAuthority, maximumFrameSize: maximumFrameSize,
            connectTimeout: configuration.connectTimeout)
        if configuration.encoding == .messagePack { settings.subprotocols = [FrameDecoder.compactProtocol] }
        do {
            let channel = try await WebSocketDialer.dial(url, settings: settings, group: group) { channel in
                try channel.pipeline.syncOperations.addHandler(
                    NIOWebSocketFrameAggregator(
                        minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1024,
                        maxAccumulatedFrameSize: maximumFrameSize))
                try channel.pipeline.syncOperations.addHandler(SessionHandler(events: continuation, onDrop: onDrop))
            }
            return WebSocketSession(channel: channel, events: events)
        } catch {
            continuation.finish()
            throw error
        }
    }

    /// Sends a text frame (masked, as clients must).
    func send(text: String) {
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text))
        channel.writeAndFlush(frame, promise: nil)
    }

    /// Sends a close frame with `code` and closes the socket once written.
    func close(code: UInt16) {
        var data = ByteBuffer()
        data.writeInteger(code)
        let channel = self.channel
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data))
            .whenComplete { _ in channel.close(promise: nil) }
    }
}

/// Hands text and close frames to the session, answers pings, answers a close and ends.
private final class SessionHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let events: AsyncStream<WebSocketSession.Event>.Continuation

    let onDrop: @Sendable () -> Void

    init(events: AsyncStream<WebSocketSession.Event>.Continuation, onDrop: @escaping @Sendable () -> Void) {
        self.events = events
        self.onDrop = onDrop
    }

    private func yield(_ event: WebSocketSession.Event) {
        if case .dropped = events.yield(event) { onDrop() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            yield(.text(frame.unmaskedData))
        case .binary:
            yield(.binary(frame.unmaskedData))
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            var payload = frame.unmaskedData
            let code = payload.readInteger(as: UInt16.self)
            yield(.close(code: code, reason: payload.readString(length: payload.readableBytes) ?? ""))
            var reply = ByteBuffer()
            reply.writeInteger(code ?? 1000)
            let channel = context.channel
            context.writeAndFlush(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: reply))
            ).whenComplete { _ in channel.close(promise: nil) }
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        events.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Why a connection attempt failed.
public enum ClientError: Error, Equatable, CustomStringConvertible {
    /// The URL provider returned something that is not a `ws://` or `wss://` URL.
    case invalidURL(String)
    /// The server answered the upgrade with this HTTP status and reason (401: the token was
    /// refused; 429, 503: try later).
    case refused(status: Int, reason: String)

    public var description: String {
        switch self {
        case .invalidURL(let url): "not a ws:// or wss:// URL: \(url.prefix(80))"
        case .refused(let status, let reason): "the server refused the connection with \(status): \(reason)"
        }
    }
}
