import ImBackplane
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A small pool of pipelined Redis connections for commands (not pub/sub).
///
/// The pool's connections are spread over the group's event loops, and a command sent from a
/// loop's thread goes out on a connection of that loop when there is one: its reply then
/// resumes the caller on the thread it is already on, with no thread to wake in between.
///
/// Connections are opened on demand and replaced when they fail. While Redis is unreachable,
/// commands fail at once with ``BackplaneError/unavailable(_:)`` instead of waiting, and new
/// connection attempts are spaced by a capped exponential backoff (100 ms doubling to 5 s).
final class RedisClient: Sendable {
    let configuration: RedisConfiguration
    private let group: any EventLoopGroup
    /// The group's loops: slot `i` connects on `loops[i % loops.count]`.
    private let loops: [any EventLoop]
    private let logger: Logger
    private let state: Mutex<State>

    private struct State {
        var slots: [Task<RedisConnection, any Error>?]
        var next = 0
        var backoff = Backoff()
        var lastFailure: String?
        /// Why the last `PING` of ``watch(every:)`` got no answer (`nil` once one did): a
        /// connection can be open to a Redis that answers nothing (hung, or stopped).
        var unanswered: String?
    }

    init(configuration: RedisConfiguration, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.group = group
        self.loops = Array(group.makeIterator())
        self.logger = logger
        self.state = Mutex(State(slots: Array(repeating: nil, count: configuration.poolSize)))
    }

    /// `.down` with the last failure while no attempt has succeeded since, or while the last
    /// `PING` got no answer within the command timeout: health is a round trip, not a connect.
    var health: BackplaneHealth {
        state.withLock { ($0.lastFailure ?? $0.unanswered).map(BackplaneHealth.down) ?? .up }
    }

    /// Sends one command; an error reply is thrown as ``BackplaneError/unavailable(_:)``.
    func send(_ command: RedisCommand) async throws -> RedisValue {
        try await send([command])[0].unwrapped(command.name)
    }

    /// Sends commands pipelined on one connection, in one round trip; error replies are returned.
    func send(_ commands: [RedisCommand]) async throws -> [RedisValue] {
        let connection = try await connection()
        do {
            return try await connection.send(commands)
        } catch {
            if !connection.isActive { forget(connection) }
            throw error
        }
    }

    /// Runs a Lua script by its SHA, loading it first if the server does not know it.
    func evaluate(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RedisValue {
        try await evaluate(script, keys: keys, arguments: arguments.map { ByteBuffer(string: $0) })
    }

    /// Runs a Lua script with arguments as bytes (payloads), loading it first if need be.
    func evaluate(_ script: RedisScript, keys: [String], arguments: [ByteBuffer]) async throws -> RedisValue {
        let tail = [ByteBuffer(string: String(keys.count))] + keys.map { ByteBuffer(string: $0) } + arguments
        let reply = try await send([RedisCommand("EVALSHA", [ByteBuffer(string: script.sha)] + tail)])[0]
        if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
            return try await send(RedisCommand("EVAL", [ByteBuffer(string: script.source)] + tail))
        }
        return try reply.unwrapped("script \(script.name)")
    }

    /// A live connection: on the caller's loop when the caller runs on one of the group's loops.
    func connection() async throws -> RedisConnection {
        // A pooled connection Redis has closed (a restart, say) is replaced at once instead of
        // failing the call; a connection that is closed right after opening is a failure.
        for _ in 0...configuration.poolSize {
            let task = try slot()
            let connection: RedisConnection
            do {
                connection = try await task.value
            } catch {
                clear(task)
                failed(error)
                throw error
            }
            if connection.isActive {
                state.withLock { state in
                    state.backoff.reset()
                    state.lastFailure = nil
                }
                return connection
            }
            clear(task)
        }
        let error = BackplaneError.unavailable("redis closes every new connection")
        failed(error)
        throw error
    }

    /// The task of the next slot's connection, opening one if the slot is empty and the
    /// backoff allows; throws ``BackplaneError/unavailable(_:)`` while it does not. On one of
    /// the group's loops, the next of that loop's slots (``loops``).
    private func slot() throws -> Task<RedisConnection, any Error> {
        let loopCount = loops.count
        let current = loops.firstIndex { $0.inEventLoop }
        return try state.withLock { state in
            let count = state.slots.count
            var index = state.next % count
            if let current, current < count {
                // Slots current, current + loopCount, …: the ones connected on this loop.
                let mine = (count - current + loopCount - 1) / loopCount
                index = current + (state.next % mine) * loopCount
            }
            state.next &+= 1
            if let task = state.slots[index] { return task }
            guard state.backoff.mayAttempt() else {
                throw BackplaneError.unavailable(state.lastFailure ?? "redis unreachable, retrying")
            }
            let configuration = configuration
            let loop: any EventLoopGroup = loopCount > 0 ? loops[index % loopCount] : group
            let task = Task { try await RedisConnection.connect(configuration, group: loop) }
            state.slots[index] = task
            return task
        }
    }

    /// Records a failed connection attempt: health goes down and the next attempt waits.
    private func failed(_ error: any Error) {
        let reason = "\(error)"
        let wasUp = state.withLock { state in
            defer {
                state.lastFailure = reason
                state.backoff.failed()
            }
            return state.lastFailure == nil
        }
        if wasUp { logger.warning("redis unavailable", metadata: ["error": "\(reason)"]) }
    }

    /// Sends `PING` every `interval` until graceful shutdown or cancellation, so ``health``
    /// follows Redis going away, hanging, and coming back while nothing else is sent: a `PING`
    /// not answered within the command timeout makes health `.down` until one is.
    func watch(every interval: Duration = .seconds(1)) async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    _ = try await self.send(RedisCommand(["PING"]))
                    self.state.withLock { $0.unanswered = nil }
                } catch {
                    let reason = "redis did not answer PING: \(error)"
                    let wasAnswering = self.state.withLock { state in
                        defer { state.unanswered = reason }
                        return state.unanswered == nil
                    }
                    if wasAnswering { self.logger.warning("redis is not answering", metadata: ["error": "\(error)"]) }
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    private func clear(_ task: Task<RedisConnection, any Error>) {
        state.withLock { state in
            for index in state.slots.indices where state.slots[index] == task { state.slots[index] = nil }
        }
    }

    private func forget(_ connection: RedisConnection) {
        let tasks = state.withLock { $0.slots }
        Task {
            for case let task? in tasks where (try? await task.value) === connection { clear(task) }
        }
    }

    /// Closes every connection.
    func close() async {
        let tasks = state.withLock { state in
            defer { state.slots = Array(repeating: nil, count: state.slots.count) }
            return state.slots
        }
        for case let task? in tasks { (try? await task.value)?.close() }
    }
}

/// Capped exponential backoff: 100 ms doubling to 5 s.
struct Backoff: Sendable {
    private var delay: Duration = .zero
    private var notBefore = ContinuousClock.now

    /// Whether an attempt may start now.
    func mayAttempt() -> Bool { ContinuousClock.now >= notBefore }

    /// How long to wait before the next attempt.
    var currentDelay: Duration { delay }

    /// Records a failure: the next attempt waits longer.
    mutating func failed() {
        delay = delay == .zero ? .milliseconds(100) : min(delay * 2, .seconds(5))
        notBefore = ContinuousClock.now.advanced(by: delay)
    }

    /// Records a success.
    mutating func reset() {
        delay = .zero
        notBefore = ContinuousClock.now
    }
}
