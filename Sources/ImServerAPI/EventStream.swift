import Foundation
import Hummingbird
import ImCore
import ImHelper
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// How much one `GET /v1/events` reader may fall behind before it is disconnected.
public struct EventStreamLimits: Sendable {
    /// Events written to no socket yet, per reader.
    public var maximumBacklog: Int = 1000
    /// Bytes of those events, per reader.
    public var maximumBacklogBytes: Int = 1024 * 1024
    /// How long a reader that fell behind has to take the final comment before its connection
    /// is closed without it (a reader that stopped reading never will).
    public var closeGrace: Duration = .seconds(5)
    /// Called with the reason when a reader is found too far behind (it is then disconnected).
    public var onDisconnect: (@Sendable (String) -> Void)?

    /// The documented defaults.
    public init() {}
}

/// `GET /v1/events`: online/offline events as server-sent events, one JSON object each, with a
/// comment line every 15 s (keeps proxies from timing out and notices a client that left).
///
/// The body writer waits for the socket to take each write, so what a reader has not taken
/// waits here; past ``EventStreamLimits`` the reader is disconnected: it gets the comment
/// `: disconnected: …` if it takes it within the grace, else its connection is closed. The
/// stream ends when the server shuts down.
struct EventStream: Sendable {
    let helper: ImHelper
    let limits: EventStreamLimits

    /// Thrown to close the connection of a reader that fell behind and stayed there.
    struct SlowReader: Error {}

    func response(logger: Logger) async throws -> Response {
        let events = try await helper.events()
        let limits = limits
        let body = ResponseBody { writer in
            let backlog = Backlog(limits: limits, logger: logger)
            let (lines, sink) = AsyncStream<String>.makeStream()
            let out = WriterBox(writer)
            try await withGracefulShutdownHandler {
                try await withThrowingTaskGroup(of: Role.self) { group in
                    group.addTask {
                        try await Self.pump(lines, into: out, backlog: backlog)
                        return .pump
                    }
                    group.addTask {
                        let encoder = JSONEncoder()
                        for await event in events {
                            guard let json = try? encoder.encode(EventBody(event)) else { continue }
                            let line = "event: \(event.kind.name)\ndata: \(String(decoding: json, as: UTF8.self))\n\n"
                            try await Self.queue(line, into: sink, backlog: backlog, grace: limits.closeGrace)
                        }
                        sink.finish()
                        return .forward
                    }
                    group.addTask {
                        while (try? await Task.sleep(for: .seconds(15))) != nil {
                            try await Self.queue(
                                ": keep-alive\n\n", into: sink, backlog: backlog,
                                grace: limits.closeGrace)
                        }
                        return .keepAlive
                    }
                    // Done when the pump has ended the response; a slow reader's SlowReader ends it early.
                    while let role = try await group.next(), role != .pump {}
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                sink.finish()
            }
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
            body: body)
    }

    /// Writes `lines` as they come; after they end, the reason when the reader fell behind.
    private static func pump(_ lines: AsyncStream<String>, into out: WriterBox, backlog: Backlog) async throws {
        try await out.writer.write(ByteBuffer(string: ": connected\n\n"))
        for await line in lines {
            try await out.writer.write(ByteBuffer(string: line))
            backlog.remove(bytes: line.utf8.count)
        }
        if let reason = backlog.overflowReason {
            try await out.writer.write(ByteBuffer(string: ": disconnected: \(reason)\n\n"))
        }
        try await out.writer.finish(nil)
    }

    /// Queues `line` for the pump, unless the reader is behind the limits: then ends the queue
    /// and, if the pump has not finished within `grace` (so the reader took the final comment),
    /// throws ``SlowReader``, which closes the connection.
    private static func queue(
        _ line: String, into sink: AsyncStream<String>.Continuation, backlog: Backlog,
        grace: Duration
    ) async throws {
        guard backlog.add(bytes: line.utf8.count) else {
            sink.finish()
            try await Task.sleep(for: grace)
            throw SlowReader()
        }
        sink.yield(line)
    }

    /// The tasks of one response.
    private enum Role { case pump, forward, keepAlive }
}

/// The response body writer, handed to the pump task (only it uses the writer, and the task
/// ends before the body closure returns).
private final class WriterBox: @unchecked Sendable {
    var writer: any ResponseBodyWriter

    init(_ writer: any ResponseBodyWriter) { self.writer = writer }
}

/// What one reader has queued and not yet written, against the limits.
private final class Backlog: Sendable {
    private struct State {
        var events = 0
        var bytes = 0
        var overflow: String?
    }

    private let limits: EventStreamLimits
    private let logger: Logger
    private let state = Mutex(State())

    init(limits: EventStreamLimits, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    /// Counts one more queued line of `bytes` bytes; `false` (for good) once the reader is
    /// further behind than the limits.
    func add(bytes: Int) -> Bool {
        let (accepted, newOverflow) = state.withLock { state -> (Bool, String?) in
            guard state.overflow == nil else { return (false, nil) }
            if state.events >= limits.maximumBacklog || state.bytes + bytes > limits.maximumBacklogBytes {
                let reason =
                    "reader fell more than \(limits.maximumBacklog) events or "
                    + "\(limits.maximumBacklogBytes) bytes behind; reconnect and resynchronise"
                state.overflow = reason
                return (false, reason)
            }
            state.events += 1
            state.bytes += bytes
            return (true, nil)
        }
        if let newOverflow {
            logger.warning("disconnecting an event stream reader", metadata: ["reason": "\(newOverflow)"])
            limits.onDisconnect?(newOverflow)
        }
        return accepted
    }

    /// Counts a written line.
    func remove(bytes: Int) {
        state.withLock { state in
            state.events = max(state.events - 1, 0)
            state.bytes = max(state.bytes - bytes, 0)
        }
    }

    /// Why the reader is being disconnected, once it fell behind.
    var overflowReason: String? { state.withLock { $0.overflow } }
}
