import Foundation
public import ImCore
public import NIOCore
import NIOPosix
import ImClient
public import NIOWebSocket

/// A real WebSocket client on SwiftNIO for tests: connects with a token URL, records every
/// frame the server sends, and can misbehave on purpose (stop reading, ignore pings, send
/// oversized or malformed frames).
public final class TestClient: JSONFrameReading {
    /// What the server sent.
    public enum Frame: Sendable, Equatable {
        /// A text frame.
        case text(String)
        /// A binary frame.
        case binary(ByteBuffer)
        /// A close frame with its code (if any) and reason.
        case close(code: UInt16?, reason: String)
    }

    /// How the client behaves.
    public struct Options: Sendable {
        /// Answer server pings with pongs (as browsers do).
        public var respondToPings = true
        /// The socket's receive buffer size, to fill it quickly in slow-consumer tests.
        public var receiveBufferSize: Int?
        /// Answer the server's close frame with a close frame and close the socket (as browsers
        /// do). When `false` the close frame is recorded and left unanswered: the server has to
        /// end the connection itself, after its grace period (a client slow to answer a close).
        public var answersClose = true
        /// For `wss://` URLs: the certificate authority (a PEM file) to trust; the server's
        /// certificate must be valid for the URL's host.
        public var trustedAuthority: String?
        /// The subprotocols offered in `Sec-WebSocket-Protocol` (`imserver.v1.msgpack`: the
        /// compact encoding).
        public var subprotocols: [String] = []
        /// Options with the defaults.
        public init() {}
    }

    private let channel: any Channel
    /// Every frame received, in order.
    public let frames: AsyncQueue<Frame>

    private init(channel: any Channel, frames: AsyncQueue<Frame>) {
        self.channel = channel
        self.frames = frames
    }

    /// Opens a WebSocket to `url` (`ws://host:port/path?query`, or `wss://` with
    /// ``Options/trustedAuthority``); throws ``TestClientError/refused(status:reason:)`` when the
    /// server answers the handshake without upgrading.
    public static func connect(to url: String, options: Options = Options()) async throws -> TestClient {
        let frames = AsyncQueue<Frame>()
        var settings = WebSocketDialer.Settings(
            trustedAuthority: options.trustedAuthority, maximumFrameSize: 1 << 24,
            receiveBufferSize: options.receiveBufferSize, automaticErrorHandling: false)
        settings.subprotocols = options.subprotocols
        do {
            let channel = try await WebSocketDialer.dial(
                url, settings: settings, group: MultiThreadedEventLoopGroup.singleton
            ) { channel in
                try channel.pipeline.syncOperations.addHandler(
                    FrameCollector(
                        frames: frames, respondToPings: options.respondToPings, answersClose: options.answersClose))
            }
            return TestClient(channel: channel, frames: frames)
        } catch ClientError.invalidURL {
            throw TestClientError.invalidURL(url)
        } catch ClientError.refused(let status, let reason) {
            throw TestClientError.refused(status: status, reason: reason)
        }
    }

    // MARK: Receiving

    /// The next frame; throws ``TestClientError/closed`` when the connection ended first.
    public func next(timeout: Duration = .seconds(5)) async throws -> Frame {
        guard let frame = try await frames.next(timeout: timeout) else { throw TestClientError.closed }
        return frame
    }

    /// The next text frame parsed as JSON; throws if the next frame is anything else.
    public func nextJSON(timeout: Duration = .seconds(5)) async throws -> JSONValue {
        let frame = try await next(timeout: timeout)
        guard case .text(let text) = frame else { throw TestClientError.unexpected(frame) }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        } catch {
            throw TestClientError.notJSON(text)
        }
    }

    /// Reads frames until the server's close frame and returns its code; text frames before it are dropped.
    public func closeCode(timeout: Duration = .seconds(10)) async throws -> UInt16? {
        while true {
            if case .close(let code, _) = try await next(timeout: timeout) { return code }
        }
    }

    /// Starts or stops reading from the socket (stopping makes the client a slow consumer).
    public func setReading(_ reading: Bool) async throws {
        try await channel.setOption(.autoRead, value: reading).get()
        if reading { channel.read() }
    }

    // MARK: Sending

    /// Sends a text frame.
    public func send(text: String) async throws {
        try await send(opcode: .text, data: ByteBuffer(string: text))
    }

    /// Sends one frame of any kind.
    public func send(opcode: WebSocketOpcode, data: ByteBuffer, fin: Bool = true) async throws {
        let frame = WebSocketFrame(fin: fin, opcode: opcode, maskKey: .random(), data: data)
        try await channel.writeAndFlush(frame)
    }

    /// Sends `frame` exactly as given: unmasked when it has no mask key, with its reserved
    /// bits and opcode as set (to test how a server treats frames the RFC forbids).
    public func send(_ frame: WebSocketFrame) async throws {
        try await channel.writeAndFlush(frame)
    }

    /// Sends a close frame and closes the socket.
    public func close(code: UInt16 = 1000) async {
        var data = ByteBuffer()
        data.writeInteger(code)
        try? await send(opcode: .connectionClose, data: data)
        try? await channel.close()
    }

    /// Sends a close frame (1000) and closes the socket.
    public func disconnect() async { await close() }

    /// Closes the way a browser does: sends a close frame and waits until the server has
    /// answered it and ended the connection, so every frame the server sent before its close is
    /// in ``frames``; closes the socket itself after `timeout` at the latest. Returns whether the
    /// server ended the connection in time.
    @discardableResult
    public func closeGracefully(code: UInt16 = 1000, timeout: Duration = .seconds(5)) async -> Bool {
        var data = ByteBuffer()
        data.writeInteger(code)
        try? await send(opcode: .connectionClose, data: data)
        let ended = (try? await waitUntil(timeout: timeout) { !channel.isActive }) != nil
        try? await channel.close()
        return ended
    }

    /// Whether the socket is still open.
    public var isActive: Bool { channel.isActive }
}

/// Why a test client failed.
public enum TestClientError: Error, Equatable, CustomStringConvertible {
    /// The URL could not be parsed.
    case invalidURL(String)
    /// The server refused the upgrade with this status and body.
    case refused(status: Int, reason: String)
    /// The connection ended.
    case closed
    /// A frame other than the one expected arrived.
    case unexpected(TestClient.Frame)
    /// A text frame was not JSON.
    case notJSON(String)

    public var description: String {
        switch self {
        case .invalidURL(let url): "invalid URL \(url)"
        case .refused(let status, let reason): "refused with \(status): \(reason)"
        case .closed: "connection closed"
        case .unexpected(let frame): "unexpected frame \(frame)"
        case .notJSON(let text): "not JSON: \(text)"
        }
    }
}

/// Records frames after the upgrade.
private final class FrameCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let frames: AsyncQueue<TestClient.Frame>
    let respondToPings: Bool
    let answersClose: Bool

    init(frames: AsyncQueue<TestClient.Frame>, respondToPings: Bool, answersClose: Bool) {
        self.frames = frames
        self.respondToPings = respondToPings
        self.answersClose = answersClose
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            frames.push(.text(String(buffer: frame.unmaskedData)))
        case .binary:
            frames.push(.binary(frame.unmaskedData))
        case .ping:
            if respondToPings {
                let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
                context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
            }
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self)
            frames.push(.close(code: code, reason: data.readString(length: data.readableBytes) ?? ""))
            guard answersClose else { return }
            var reply = ByteBuffer()
            reply.writeInteger(code ?? 1000)
            let channel = context.channel
            context.writeAndFlush(
                wrapOutboundOut(
                    WebSocketFrame(
                        fin: true, opcode: .connectionClose,
                        maskKey: .random(), data: reply))
            )
            .whenComplete { _ in channel.close(promise: nil) }
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        frames.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
