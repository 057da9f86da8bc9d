public import ImBackplane
public import Logging
public import NIOCore
import ServiceLifecycle
import Synchronization

/// ``Bus`` over Redis pub/sub: pipelined `PUBLISH` on the command pool, and one subscriber
/// connection per process shared by all of its ``BusSubscriber``s.
///
/// While Redis is unreachable the bus reports `.down`, publishes fail at once, and `run()`
/// reconnects with capped exponential backoff; on reconnect it subscribes every subject again.
/// Messages published meanwhile are lost (at-most-once).
public final class RedisBus: Bus {
    let client: RedisClient
    private let configuration: RedisConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = Mutex(State())
    private let wake = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))

    private struct State {
        var connection: RedisConnection?
        var subscribers: [ObjectIdentifier: RedisSubscriber] = [:]
        var counts: [String: Int] = [:]
        var subscriberHealth: BackplaneHealth = .down("not connected yet")
        var stopping = false
    }

    /// A bus on the Redis that `configuration` names.
    public init(configuration: RedisConfiguration, group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.client = RedisClient(configuration: configuration, group: group, logger: logger)
    }

    public var health: BackplaneHealth {
        let subscription = state.withLock { $0.subscriberHealth }
        guard subscription.isUp else { return subscription }
        return client.health
    }

    public func run() async throws {
        var backoff = Backoff()
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !state.withLock({ $0.stopping }) {
                do {
                    let connection = try await RedisConnection.connect(configuration, group: group) {
                        [weak self] push in
                        self?.dispatch(push)
                    }
                    let subjects = state.withLock { state in
                        state.connection = connection
                        return Array(state.counts.keys)
                    }
                    try await send(subscribe: subjects, on: connection)
                    state.withLock { $0.subscriberHealth = .up }
                    backoff.reset()
                    logger.info("redis subscriber connected", metadata: ["subjects": "\(subjects.count)"])
                    await withTaskCancellationHandler {
                        try? await connection.channel.closeFuture.get()
                    } onCancel: {
                        connection.close()
                    }
                    let stopping = state.withLock { state in
                        state.connection = nil
                        state.subscriberHealth = .down("redis subscriber connection lost")
                        return state.stopping
                    }
                    if !stopping { logger.warning("redis subscriber connection lost; reconnecting") }
                } catch {
                    state.withLock { $0.subscriberHealth = .down("\(error)") }
                    backoff.failed()
                    logger.debug("redis subscriber connect failed", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: backoff.currentDelay)
                }
            }
        } onGracefulShutdown: {
            self.shutDown()
        }
        for subscriber in state.withLock({ Array($0.subscribers.values) }) { await subscriber.close() }
        await client.close()
    }

    private func shutDown() {
        let connection = state.withLock { state in
            state.subscriberHealth = .down("shut down")
            state.stopping = true
            return state.connection
        }
        connection?.close()
    }

    public func publish(_ message: ByteBuffer, to subject: String) async throws {
        _ = try await client.send(RedisCommand("PUBLISH", [ByteBuffer(string: subject), message]))
    }

    public func publish(_ batch: [BusMessage]) async throws {
        guard !batch.isEmpty else { return }
        let replies = try await client.send(
            batch.map { RedisCommand("PUBLISH", [ByteBuffer(string: $0.subject), $0.payload]) })
        for reply in replies { _ = try reply.unwrapped("PUBLISH") }
    }

    public func makeSubscriber() async throws -> any BusSubscriber {
        let subscriber = RedisSubscriber(bus: self)
        state.withLock { $0.subscribers[ObjectIdentifier(subscriber)] = subscriber }
        return subscriber
    }

    // MARK: Shared subscription

    /// Adds `subjects` for `subscriber`; subscribes on Redis those no one had.
    func add(_ subjects: [String], for subscriber: RedisSubscriber) async throws {
        let (fresh, connection) = state.withLock { state -> ([String], RedisConnection?) in
            var fresh: [String] = []
            for subject in subjects {
                state.counts[subject, default: 0] += 1
                if state.counts[subject] == 1 { fresh.append(subject) }
            }
            return (fresh, state.connection)
        }
        guard !fresh.isEmpty else { return }
        var ready = connection
        if ready == nil { ready = try await waitForConnection() }
        guard let connection = ready else {
            throw BackplaneError.unavailable("redis subscriber not connected; it subscribes on reconnect")
        }
        try await send(subscribe: fresh, on: connection)
    }

    /// Removes `subjects` of `subscriber`; unsubscribes on Redis those no one wants now.
    func remove(_ subjects: [String], for subscriber: RedisSubscriber) async throws {
        let (stale, connection) = state.withLock { state -> ([String], RedisConnection?) in
            var stale: [String] = []
            for subject in subjects {
                guard let count = state.counts[subject] else { continue }
                if count <= 1 {
                    state.counts[subject] = nil
                    stale.append(subject)
                } else {
                    state.counts[subject] = count - 1
                }
            }
            return (stale, state.connection)
        }
        guard !stale.isEmpty, let connection else { return }
        _ = try await connection.send(stale.map { RedisCommand(["UNSUBSCRIBE", $0]) })
    }

    /// Waits up to the command timeout for `run()` to connect the subscriber connection.
    private func waitForConnection() async throws -> RedisConnection? {
        let deadline = ContinuousClock.now.advanced(by: configuration.commandTimeout)
        while ContinuousClock.now < deadline {
            if let connection = state.withLock({ $0.connection }) { return connection }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    func forget(_ subscriber: RedisSubscriber) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: ObjectIdentifier(subscriber)) }
    }

    private func send(subscribe subjects: [String], on connection: RedisConnection) async throws {
        guard !subjects.isEmpty else { return }
        for reply in try await connection.send(subjects.map { RedisCommand(["SUBSCRIBE", $0]) }) {
            _ = try reply.unwrapped("SUBSCRIBE")
        }
    }

    private func dispatch(_ push: RedisValue) {
        guard case .array(let parts) = push, parts.count == 3, let subject = parts[1].string,
            case .bulk(let payload) = parts[2]
        else { return }
        let targets = state.withLock { Array($0.subscribers.values) }
        let message = BusMessage(subject: subject, payload: payload)
        for subscriber in targets { subscriber.deliver(message) }
    }
}

/// One subscriber of a ``RedisBus``: its own subject set over the bus's shared connection.
final class RedisSubscriber: BusSubscriber {
    let messages: BusMessages
    private let continuation: BusMessages.Continuation
    private let subjects = Mutex(Set<String>())
    private weak let bus: RedisBus?

    init(bus: RedisBus) {
        self.bus = bus
        (messages, continuation) = BusMessages.makeStream(bufferingPolicy: .bufferingNewest(1 << 20))
    }

    func subscribe(_ subjects: [String]) async throws {
        let fresh = self.subjects.withLock { current in subjects.filter { current.insert($0).inserted } }
        guard !fresh.isEmpty, let bus else { return }
        try await bus.add(fresh, for: self)
    }

    func unsubscribe(_ subjects: [String]) async throws {
        let gone = self.subjects.withLock { current in subjects.filter { current.remove($0) != nil } }
        guard !gone.isEmpty, let bus else { return }
        try await bus.remove(gone, for: self)
    }

    /// Hands a message on if this subscriber wants its subject.
    func deliver(_ message: BusMessage) {
        guard subjects.withLock({ $0.contains(message.subject) }) else { return }
        continuation.yield(message)
    }

    func close() async {
        let current = subjects.withLock { subjects in
            defer { subjects.removeAll() }
            return Array(subjects)
        }
        try? await bus?.remove(current, for: self)
        bus?.forget(self)
        continuation.finish()
    }
}
