import Foundation
public import NIOCore
public import NIOPosix
import Synchronization

/// A client of ImServer for Swift apps and services (docs/clients.md).
///
/// It asks `url` for a connect URL before every connection attempt (tokens work once), keeps
/// the connection open with pings, acknowledges every message that asks for a receipt, and
/// reconnects with a jittered exponential backoff when the connection ends, until ``close()``
/// or a final close code (4003, forced offline). Everything it learns arrives on ``events``.
///
/// ```swift
/// let client = ImClient { try await backend.connectURL(for: "alice") }
/// client.connect()
/// for await event in client.events {
///     if case .message(let message) = event { print(message.from, message.json) }
/// }
/// ```
public final class ImClient: Sendable {
    /// Returns a fresh connect URL (`ws://` or `wss://`, with its token).
    public typealias URLProvider = @Sendable () async throws -> String

    /// What happens, in order: `ready`, messages, receipts, disconnections. Finishes after
    /// ``close()`` or a final close code.
    public let events: AsyncStream<ClientEvent>
    /// The settings.
    public let configuration: ClientConfiguration

    private let continuation: AsyncStream<ClientEvent>.Continuation
    private let provider: URLProvider
    private let group: any EventLoopGroup
    private let state = Mutex(State())
    private let dropped = Atomic<Int>(0)

    private struct State {
        var loop: Task<Void, Never>?
        var session: WebSocketSession?
        var closed = false
    }

    /// A client that gets its URLs from `url`; call ``connect()`` to start.
    public init(
        configuration: ClientConfiguration = ClientConfiguration(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, url: @escaping URLProvider
    ) {
        self.configuration = configuration
        self.group = group
        self.provider = url
        (events, continuation) = AsyncStream.makeStream(
            bufferingPolicy: .bufferingNewest(max(1, configuration.eventBufferLimit)))
    }

    /// Starts connecting (and reconnecting); does nothing if already started or closed.
    public func connect() {
        state.withLock { state in
            guard state.loop == nil, !state.closed else { return }
            state.loop = Task { await self.run() }
        }
    }

    /// Disconnects for good (close code 1000) and finishes ``events``.
    public func close() async {
        let (loop, session) = state.withLock { state in
            state.closed = true
            return (state.loop, state.session)
        }
        session?.close(code: 1000)
        loop?.cancel()
        await loop?.value
        finish(code: 1000, reason: "closed by the client")
    }

    /// Whether the server has sent `ready` on the current connection.
    public var isConnected: Bool { state.withLock { $0.session != nil } && ready.load(ordering: .relaxed) }

    /// Events (or frames not yet read into events) dropped, the oldest first, because they fell
    /// behind by more than ``ClientConfiguration/eventBufferLimit``.
    public var droppedEvents: Int { dropped.load(ordering: .relaxed) }

    private let ready = Atomic<Bool>(false)

    // MARK: The connection loop

    private func run() async {
        var attempt = 0
        while !Task.isCancelled {
            let (code, reason, wasReady) = await connectOnce()
            if wasReady { attempt = 0 }
            if Task.isCancelled || state.withLock({ $0.closed }) { return }
            if let code, configuration.finalCloseCodes.contains(code) {
                state.withLock { $0.closed = true }
                finish(code: code, reason: reason)
                return
            }
            let delay = backoff(attempt: attempt)
            attempt = min(attempt + 1, 30)
            emit(.disconnected(code: code, reason: reason, retryIn: delay))
            try? await Task.sleep(for: delay)
        }
    }

    /// One connection, from asking for a URL to its end: the close code (if the server sent
    /// one), a reason, and whether it became ready.
    private func connectOnce() async -> (UInt16?, String, Bool) {
        let session: WebSocketSession
        do {
            let url = try await provider()
            session = try await WebSocketSession.open(url, configuration: configuration, group: group) {
                self.dropped.add(1, ordering: .relaxed)
            }
        } catch {
            return (nil, "\(error)", false)
        }
        let accepted = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.session = session
            return true
        }
        guard accepted else {
            session.close(code: 1000)
            return (1000, "closed by the client", false)
        }
        let lastFrame = LastFrame()
        let heartbeat = Task { await self.keepAlive(session, lastFrame: lastFrame) }
        var closeCode: UInt16?
        var reason = "connection lost"
        var wasReady = false
        for await event in session.events {
            lastFrame.touch()
            switch event {
            case .text(let payload):
                if handle(FrameDecoder.json(payload), on: session) { wasReady = true }
            case .binary(let payload):
                if handle(FrameDecoder.messagePack(payload), on: session) { wasReady = true }
            case .close(let code, let text):
                closeCode = code
                reason = text
            }
        }
        heartbeat.cancel()
        ready.store(false, ordering: .relaxed)
        state.withLock { $0.session = nil }
        return (closeCode, reason, wasReady)
    }

    /// Sends `ping` every ``ClientConfiguration/pingInterval``; drops a connection silent for
    /// longer than ``ClientConfiguration/silenceLimit``.
    private func keepAlive(_ session: WebSocketSession, lastFrame: LastFrame) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.pingInterval)
            if Task.isCancelled { return }
            let silent = Self.now() - lastFrame.time
            if silent > configuration.silenceLimit.nanoseconds {
                session.close(code: 4000)
                return
            }
            session.send(text: #"{"type":"ping"}"#)
        }
    }

    /// Reports one server frame, acknowledging a message that asks for it; returns whether it
    /// was `ready`.
    private func handle(_ frame: DecodedFrame?, on session: WebSocketSession) -> Bool {
        switch frame {
        case .ready(let client, let node):
            ready.store(true, ordering: .relaxed)
            emit(.ready(client: client, node: node))
            return true
        case .message(let message):
            emit(.message(message))
            if message.wantsReceipt { session.send(text: #"{"type":"ack","id":"# + Self.quoted(message.id) + "}") }
        case .receipt(let receipt):
            emit(.receipt(receipt))
        case .other, nil:
            break
        }
        return false
    }

    // MARK: Helpers

    private func emit(_ event: ClientEvent) {
        if case .dropped = continuation.yield(event) { dropped.add(1, ordering: .relaxed) }
    }

    private func finish(code: UInt16?, reason: String) {
        emit(.disconnected(code: code, reason: reason, retryIn: nil))
        continuation.finish()
    }

    /// Between half of and all of `minimumDelay × 2^attempt`, at most `maximumDelay`.
    private func backoff(attempt: Int) -> Duration {
        let base = min(configuration.maximumDelay, configuration.minimumDelay * (1 << min(attempt, 20)))
        return base / 2 + base / 2 * Double.random(in: 0...1)
    }

    fileprivate static func now() -> Int64 { Int64(DispatchTime.now().uptimeNanoseconds) }

    /// `text` as a JSON string literal's contents (ids are hex, but escape anyway).
    private static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}

/// When the current connection last received a frame (monotonic nanoseconds).
private final class LastFrame: Sendable {
    private let value = Atomic<Int64>(ImClient.now())

    var time: Int64 { value.load(ordering: .relaxed) }
    func touch() { value.store(ImClient.now(), ordering: .relaxed) }
}
