import ImBackplane
import NIOCore
import PostgresNIO
import Synchronization

/// One subscriber of a ``PostgresBus``: a listener per LISTEN channel of its subjects on the
/// process's listening connection, delivering in order into one stream.
///
/// A body stored in the `payloads` table is read before it is delivered; messages that arrive
/// meanwhile wait behind it, so a subject's messages keep their order.
final class PostgresSubscriber: BusSubscriber {
    private struct State {
        var subjects: Set<String> = []
        /// The listener of each channel this subscriber listens to on the current connection.
        var listening: [String: PostgresListenContext] = [:]
        var closed = false
        /// Messages waiting behind a body being read from the table, in arrival order.
        var waiting: [Pending] = []
    }

    /// A message in the ordered queue.
    private enum Pending {
        case ready(BusMessage)
        case reading(Int64)
    }

    let messages: BusMessages
    private let continuation: BusMessages.Continuation
    private let state = Mutex(State())
    private let listener: PostgresListener
    /// The most messages that may wait behind a body being read (beyond, new ones are dropped
    /// and counted: reads are bounded in time, not the rate of what arrives meanwhile).
    private let waitingLimit: Int

    /// A subscriber whose stream holds at most `bufferLimit` messages (beyond, the oldest are
    /// dropped and counted by `listener`).
    init(listener: PostgresListener, bufferLimit: Int) {
        self.waitingLimit = bufferLimit
        self.listener = listener
        (messages, continuation) = BusMessages.makeStream(bufferingPolicy: .bufferingNewest(bufferLimit))
    }

    func subscribe(_ subjects: [String]) async throws {
        let added = try state.withLock { state throws(BackplaneError) -> [String] in
            guard !state.closed else { throw BackplaneError.closed }
            return subjects.filter { state.subjects.insert($0).inserted }
        }
        guard !added.isEmpty, let connection = listener.connection else { return }
        do {
            try await attach(to: connection)
        } catch let error as BackplaneError {
            throw error
        } catch {
            throw BackplaneError.unavailable("postgres: cannot listen: \(error)")
        }
    }

    func unsubscribe(_ subjects: [String]) async throws {
        let schema = listener.database.schema
        let stopped = state.withLock { state -> [PostgresListenContext] in
            for subject in subjects { state.subjects.remove(subject) }
            let wanted = Set(state.subjects.map { NotificationCodec.channel(of: $0, schema: schema) })
            let gone = state.listening.keys.filter { !wanted.contains($0) }
            return gone.compactMap { state.listening.removeValue(forKey: $0) }
        }
        for context in stopped { context.stop() }
    }

    func close() async {
        let stopped = state.withLock { state -> [PostgresListenContext] in
            state.closed = true
            defer { state.listening = [:] }
            return Array(state.listening.values)
        }
        for context in stopped { context.stop() }
        listener.remove(self)
        continuation.finish()
    }

    /// Listens to every channel of this subscriber's subjects on `connection` that it does not
    /// listen to yet, and returns once the server has run the `LISTEN`s.
    func attach(to connection: PostgresConnection) async throws {
        let schema = listener.database.schema
        let channels = state.withLock { state in
            Set(state.subjects.map { NotificationCodec.channel(of: $0, schema: schema) })
                .filter { state.listening[$0] == nil }
        }
        guard !channels.isEmpty else { return }
        for channel in channels {
            let context = connection.addListener(channel: channel) { [weak self] _, notification in
                self?.receive(notification.payload)
            }
            let duplicate = state.withLock { state -> Bool in
                guard state.listening[channel] == nil, !state.closed else { return true }
                state.listening[channel] = context
                return false
            }
            if duplicate { context.stop() }
        }
        // The connection runs commands in order: once this answers, the LISTENs are active.
        let database = listener.database
        try await database.bounded("listening") {
            for try await _ in try await connection.query("SELECT 1", logger: database.logger) {}
        }
    }

    /// The connection was lost: its listeners are gone with it.
    func detach() {
        state.withLock { $0.listening = [:] }
    }

    /// Handles one notification (on the connection's event loop).
    private func receive(_ payload: String) {
        guard let (subject, body) = NotificationCodec.decode(payload) else { return }
        switch body {
        case .inline(let bytes):
            let message = BusMessage(subject: subject, payload: bytes)
            switch enqueue(.ready(message), subject: subject) {
            case .deliverNow: deliver(message)
            case .queued, .unwanted: return
            case .dropped: listener.subscriberDropped()
            }
        case .row(let id):
            switch enqueue(.reading(id), subject: subject) {
            case .deliverNow, .queued: break
            case .unwanted: return
            case .dropped:
                listener.subscriberDropped()
                return
            }
            let database = listener.database
            Task {
                let body = try? await database.first("reading a large payload", ByteBuffer.self) {
                    "SELECT body FROM \(unescaped: database.schema).payloads WHERE id = \(id)"
                }
                self.resolve(id, subject: subject, body: body)
            }
        }
    }

    /// What became of a notification.
    private enum Arrival {
        case deliverNow, queued, unwanted, dropped
    }

    /// Queues `pending` behind a body being read, if any (a body to read always queues), or
    /// says to deliver it now.
    private func enqueue(_ pending: Pending, subject: String) -> Arrival {
        state.withLock { state in
            guard state.subjects.contains(subject) else { return .unwanted }
            if case .ready = pending, state.waiting.isEmpty { return .deliverNow }
            guard state.waiting.count < waitingLimit else { return .dropped }
            state.waiting.append(pending)
            return .queued
        }
    }

    /// A stored body was read (or is gone: `nil`, then the message is dropped); delivers what
    /// waited behind it, in order.
    private func resolve(_ id: Int64, subject: String, body: ByteBuffer?) {
        let ready = state.withLock { state -> [BusMessage] in
            guard let index = state.waiting.firstIndex(where: { if case .reading(id) = $0 { true } else { false } })
            else { return [] }
            if let body {
                state.waiting[index] = .ready(BusMessage(subject: subject, payload: body))
            } else {
                state.waiting.remove(at: index)
            }
            var ready: [BusMessage] = []
            while let first = state.waiting.first, case .ready(let message) = first {
                ready.append(message)
                state.waiting.removeFirst()
            }
            return ready
        }
        for message in ready { deliver(message) }
    }

    private func deliver(_ message: BusMessage) {
        if case .dropped = continuation.yield(message) { listener.subscriberDropped() }
    }
}
