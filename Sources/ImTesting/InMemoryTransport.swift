public import ImCore
public import ImServer
import NIOCore
import ServiceLifecycle
import Foundation
import Synchronization

/// A transport whose connections are objects in the test's process, no sockets: a test connects
/// a client with a connect token and reads what the node writes to it.
///
/// It is built on the node's public ``Transport`` seam only (this module cannot see the node's
/// internals), like any transport outside the node: the ``Gatekeeper`` admits, the node opens
/// the connection (``NodeCore/open(_:on:output:)``) and writes through an output of ours. So
/// it also proves that seam. Pass it to a node with `ImNode(…, transports: { [InMemoryTransport(core: $0)] })`.
public final class InMemoryTransport: Transport {
    public let name = "memory"
    private let core: NodeCore
    private let state = Mutex((accepting: true, next: 0))

    /// A transport handing its connections to `core`.
    public init(core: NodeCore) {
        self.core = core
    }

    public func run() async throws {
        try? await gracefulShutdown()
    }

    public func stopAccepting() async {
        state.withLock { $0.accepting = false }
    }

    /// Connects a client with `token`, as a transport does: refused with a ``HandshakeRefusal``
    /// (the status and reason a WebSocket client would get) or handed to the node, which sends
    /// `ready` once the connection is registered.
    public func connect(token: String) async throws -> InMemoryClient {
        let (accepting, index) = state.withLock { state in
            state.next += 1
            return (state.accepting, state.next)
        }
        guard accepting else { throw HandshakeRefusal(.serviceUnavailable, "transport stopped accepting") }
        let gatekeeper = core.gatekeeper
        // No I/O: a token, the node linked, the source's handshake rate, a place on the node.
        let checked = try gatekeeper.precheck(token: token, from: nil)
        // Signature and expiry, the node's handshake rate, the user's place, single use.
        let verified: VerifiedToken
        switch await gatekeeper.admit(token: checked) {
        case .admitted(let admitted):
            verified = admitted
        case .refused(let refusal):
            gatekeeper.release(.refused(refusal))  // gives the node's place back
            throw refusal
        }
        // On one of the node's loops, where the connection lives from now on.
        let loops = core.eventLoops
        let loop = loops[index % loops.count]
        let core = self.core
        return try await loop.submit {
            let output = InMemoryOutput(eventLoop: loop)
            do {
                let connection = try core.open(verified, on: loop, output: output)
                return InMemoryClient(connection: connection, output: output, eventLoop: loop)
            } catch {
                gatekeeper.release(.admitted(verified))
                throw error
            }
        }.get()
    }
}

/// One client of an ``InMemoryTransport``: the frames the node sent it, in order, and its close.
public final class InMemoryClient: Sendable {
    /// What the client saw.
    public enum Event: Sendable, Equatable {
        /// A frame's JSON text, delivered by a flush of the node.
        case frame(String)
        /// A keepalive the node sent (answered at once unless ``InMemoryClient/answersKeepalives`` is off).
        case keepalive
        /// The node closed the connection with `code` and `reason`.
        case closed(CloseCode, String)
    }

    /// Everything the client saw, in order.
    public var events: AsyncQueue<Event> { output.events }
    private let connection: NIOLoopBound<NodeConnection>
    private let output: InMemoryOutput
    private let eventLoop: any EventLoop

    init(connection: NodeConnection, output: InMemoryOutput, eventLoop: any EventLoop) {
        self.record = connection.record
        self.connection = NIOLoopBound(connection, eventLoop: eventLoop)
        self.output = output
        self.eventLoop = eventLoop
        output.client = connection
    }

    /// The connection as Presence knows it.
    public let record: ConnectionRecord

    /// The next event; throws ``TimedOut`` after `timeout`, ``InMemoryClientError/ended`` when no
    /// event can come any more.
    public func next(timeout: Duration = .seconds(5)) async throws -> Event {
        guard let event = try await events.next(timeout: timeout) else { throw InMemoryClientError.ended }
        return event
    }

    /// The next frame's JSON, skipping keepalives.
    public func nextFrame(timeout: Duration = .seconds(5)) async throws -> JSONValue {
        while true {
            switch try await next(timeout: timeout) {
            case .frame(let text): return try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            case .keepalive: continue
            case .closed(let code, let reason): throw InMemoryClientError.closed(code, reason)
            }
        }
    }

    /// Sends a text frame of protocol v1 (`{"type":"ack","id":…}`, `{"type":"ping"}`).
    public func send(text: String) async throws {
        let connection = self.connection
        try await eventLoop.submit { connection.value.received(text: ByteBuffer(string: text)) }.get()
    }

    /// Whether the client takes writes; while it does not, the node keeps its frames back (and
    /// closes it as a slow consumer, 4008, if it stays so).
    public func setWritable(_ writable: Bool) async throws {
        let connection = self.connection
        let output = self.output
        try await eventLoop.submit {
            output.writable = writable
            connection.value.writabilityChanged()
        }.get()
    }

    /// Whether the client answers the node's keepalives (on by default): a client that does not
    /// is closed for idleness (4009).
    public func answerKeepalives(_ answer: Bool) {
        output.answersKeepalives.withLock { $0 = answer }
    }

    /// Whether the client answers the node's close at once (on by default); one that does not
    /// keeps the connection until the close's grace has passed, as a client slow to answer a
    /// WebSocket close frame does.
    public func answerCloses(_ answer: Bool) {
        output.answersCloses.withLock { $0 = answer }
    }

    /// The client goes away, as a socket that closed would.
    public func close() async throws {
        let connection = self.connection
        let output = self.output
        try await eventLoop.submit {
            connection.value.clientStartedClosing()
            output.finish()
            connection.value.closed()
        }.get()
    }
}

/// Why an ``InMemoryClient`` could not give what was asked.
public enum InMemoryClientError: Error, Equatable, CustomStringConvertible {
    /// The connection was closed with this code and reason.
    case closed(CloseCode, String)
    /// Nothing more will come.
    case ended

    public var description: String {
        switch self {
        case .closed(let code, let reason): "the node closed the connection: \(code.rawValue) \(reason)"
        case .ended: "the connection ended"
        }
    }
}

/// The node's way to the client: frames gathered until a flush, then pushed as events.
/// Confined to its event loop (the node calls it there), apart from the `Sendable` members.
final class InMemoryOutput: ConnectionOutput, @unchecked Sendable {
    let events = AsyncQueue<InMemoryClient.Event>()
    let answersKeepalives = Mutex(true)
    let answersCloses = Mutex(true)
    var writable = true
    /// The node's side, for answering keepalives and reporting the close.
    var client: NodeConnection?
    private var pending: [String] = []
    private let closed: EventLoopPromise<Void>
    private let eventLoop: any EventLoop
    private var isFinished = false

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        closed = eventLoop.makePromise()
    }

    func write(_ frame: ServerFrame) {
        pending.append(String(buffer: frame.payload))
    }

    func flush() {
        for text in pending { events.push(.frame(text)) }
        pending.removeAll()
    }

    var isWritable: Bool { writable && !isFinished }

    func sendKeepalive() {
        events.push(.keepalive)
        if answersKeepalives.withLock({ $0 }) { _ = client?.receivedKeepalive() }
    }

    /// The client sees the close at once and answers on a later turn of the loop, as a socket's
    /// client would (so the node is never re-entered from inside its own call), or, if it does
    /// not answer closes, the connection ends after `grace`.
    func close(code: CloseCode, reason: String, grace: Duration) {
        flush()
        events.push(.closed(code, reason))
        let end: @Sendable () -> Void = {
            let client = self.client
            self.finish()
            client?.closed()
        }
        if answersCloses.withLock({ $0 }) {
            eventLoop.execute(end)
        } else {
            eventLoop.scheduleTask(in: .nanoseconds(Int64(grace.nanoseconds)), end)
        }
    }

    var closeFuture: EventLoopFuture<Void>? { isFinished ? nil : closed.futureResult }

    /// Ends the event stream and completes the close future.
    func finish() {
        guard !isFinished else { return }
        isFinished = true
        events.finish()
        closed.succeed()
        client = nil
    }
}
