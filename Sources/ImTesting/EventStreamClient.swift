import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
public import ImCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// A Server-Sent Events client of the node's event-stream transport for tests, as a browser's
/// `EventSource` and `imclient.js` use it: opens `GET <path>?token=…` with
/// `Accept: text/event-stream` on a connect URL, records every event, and posts frames back
/// to the stream's session.
public final class EventStreamClient: JSONFrameReading {
    /// One event of the stream.
    public enum Event: Sendable, Equatable {
        /// `event: session`: the stream's session and keepalive interval in milliseconds.
        case session(id: String, keepalive: Int)
        /// A `data:` event: one frame's JSON text.
        case frame(String)
        /// `event: ping`, the node's keepalive.
        case ping
        /// `event: close`: the node closed the stream with `code` and `reason`.
        case close(code: Int, reason: String)
    }

    /// Every event received, in order; finished when the stream ended.
    public let events: AsyncQueue<Event>
    private let channel: any Channel
    private let postURL: String
    private let session: String

    private init(channel: any Channel, events: AsyncQueue<Event>, postURL: String, session: String) {
        self.channel = channel
        self.events = events
        self.postURL = postURL
        self.session = session
    }

    /// Opens the stream of the connect URL `url` (`ws://host:port/path?token=…`, as the
    /// back-end mints it) and waits for its `session` event; throws
    /// ``TestClientError/refused(status:reason:)`` when the node answers with an error.
    /// `receiveBufferSize` sets the socket's receive buffer (to fill it quickly in
    /// slow-consumer tests).
    public static func connect(to url: String, receiveBufferSize: Int? = nil) async throws -> EventStreamClient {
        guard let components = URLComponents(string: url), let host = components.host, let port = components.port,
            components.scheme == "ws"
        else { throw TestClientError.invalidURL(url) }
        let events = AsyncQueue<Event>()
        let refused = AsyncQueue<(status: Int, reason: String)>()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let receiveBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferSize))
        }
        let channel =
            try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(EventCollector(events: events, refused: refused))
                }
            }
            .connect(host: host, port: port).get()
        var head = HTTPRequestHead(
            version: .http1_1, method: .GET,
            uri: components.percentEncodedPath + (components.percentEncodedQuery.map { "?" + $0 } ?? ""))
        head.headers.add(name: "host", value: "\(host):\(port)")
        head.headers.add(name: "accept", value: "text/event-stream")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
        let first: Event
        do {
            guard let event = try await events.next(timeout: .seconds(10)) else {
                if let refusal = try? await refused.next(timeout: .seconds(1)) {
                    throw TestClientError.refused(status: refusal.status, reason: refusal.reason)
                }
                throw TestClientError.closed
            }
            first = event
        } catch {
            try? await channel.close()
            throw error
        }
        guard case .session(let session, _) = first else {
            try? await channel.close()
            throw TestClientError.unexpected(.text("\(first)"))
        }
        return EventStreamClient(
            channel: channel, events: events, postURL: "http://\(host):\(port)\(components.percentEncodedPath)",
            session: session)
    }

    /// The next event; throws ``TestClientError/closed`` when the stream ended first.
    public func next(timeout: Duration = .seconds(5)) async throws -> Event {
        guard let event = try await events.next(timeout: timeout) else { throw TestClientError.closed }
        return event
    }

    /// The next frame parsed as JSON, skipping keepalives; throws on a close event.
    public func nextJSON(timeout: Duration = .seconds(5)) async throws -> JSONValue {
        while true {
            switch try await next(timeout: timeout) {
            case .frame(let text):
                guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
                    throw TestClientError.notJSON(text)
                }
                return value
            case .ping, .session:
                continue
            case .close(let code, let reason):
                throw TestClientError.unexpected(.close(code: UInt16(clamping: code), reason: reason))
            }
        }
    }

    /// Reads events until the node's `close` event and returns its code and reason; frames
    /// before it are dropped.
    public func closeEvent(timeout: Duration = .seconds(10)) async throws -> (code: Int, reason: String) {
        while true {
            if case .close(let code, let reason) = try await next(timeout: timeout) { return (code, reason) }
        }
    }

    /// Posts one frame of protocol v1 (`{"type":"ack","id":…}`) for this stream, as
    /// `imclient.js` does; returns the HTTP status (202 when the node took it).
    @discardableResult
    public func send(text: String, session: String? = nil) async throws -> Int {
        let query = "?session=" + (session ?? self.session)
        guard let url = URL(string: postURL + query) else { throw TestClientError.invalidURL(postURL + query) }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.httpBody = Data(text.utf8)
        request.setValue("text/plain", forHTTPHeaderField: "Content-Type")
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    /// Sends a second request on the stream's socket (a client breaking the transport's rule
    /// that nothing follows the stream's request).
    public func sendSecondRequest() async throws {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/health")
        head.headers.add(name: "host", value: "127.0.0.1")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
    }

    /// Starts or stops reading from the socket (stopping makes the client a slow consumer).
    public func setReading(_ reading: Bool) async throws {
        try await channel.setOption(.autoRead, value: reading).get()
        if reading { channel.read() }
    }

    /// Closes the stream's socket, as a browser closing its `EventSource`.
    public func close() async {
        try? await channel.close()
    }

    /// Closes the stream's socket.
    public func disconnect() async { await close() }

    /// Whether the stream's socket is still open.
    public var isActive: Bool { channel.isActive }
}

/// Splits the response into events (RFC: lines `field: value`, an empty line ends an event).
private final class EventCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private let events: AsyncQueue<EventStreamClient.Event>
    private let refused: AsyncQueue<(status: Int, reason: String)>
    private var status = 0
    private var text = ""

    init(events: AsyncQueue<EventStreamClient.Event>, refused: AsyncQueue<(status: Int, reason: String)>) {
        self.events = events
        self.refused = refused
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(let body):
            text += String(buffer: body)
            guard status == 200 else { return }
            while let end = text.range(of: "\n\n") {
                let block = String(text[..<end.lowerBound])
                text = String(text[end.upperBound...])
                if let event = Self.event(block) { events.push(event) }
            }
        case .end:
            if status != 200 {
                refused.push((status, text.trimmingCharacters(in: .whitespacesAndNewlines)))
                context.close(promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        events.finish()
        context.fireChannelInactive()
    }

    private static func event(_ block: String) -> EventStreamClient.Event? {
        var name = "message"
        var data: [Substring] = []
        for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
            if line.hasPrefix("data: ") { data.append(line.dropFirst(6)) }
        }
        let text = data.joined(separator: "\n")
        let json = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        switch name {
        case "session":
            return .session(id: json?["session"]?.string ?? "", keepalive: json?["keepalive"]?.integer ?? 0)
        case "ping":
            return .ping
        case "close":
            return .close(code: json?["code"]?.integer ?? 0, reason: json?["reason"]?.string ?? "")
        default:
            return .frame(text)
        }
    }
}

extension JSONValue {
    /// The value as an integer, when it is a number.
    fileprivate var integer: Int? {
        guard case .number(let number) = self else { return nil }
        return NSDecimalNumber(decimal: number).intValue
    }
}
