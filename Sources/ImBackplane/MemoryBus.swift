public import NIOCore
import ServiceLifecycle
import Synchronization

/// ``Bus`` inside this process: the embedded default for a single node.
///
/// Publishing hands the same `ByteBuffer` to every subscriber of the subject (no copy).
/// Each subscriber buffers at most ``bufferLimit`` undelivered messages; past that the oldest
/// are dropped, as a network bus would lose them.
public final class MemoryBus: Bus {
    /// The most messages one subscriber holds undelivered.
    public let bufferLimit: Int

    private struct State {
        var subscribers: [ObjectIdentifier: MemorySubscriber] = [:]
        var bySubject: [String: [ObjectIdentifier: MemorySubscriber]] = [:]
        var closed = false
    }

    private let state = Mutex(State())

    /// A bus whose subscribers each buffer up to `bufferLimit` messages.
    public init(bufferLimit: Int = 1 << 20) {
        self.bufferLimit = bufferLimit
    }

    /// Always `.up`: there is no backend to lose.
    public var health: BackplaneHealth { .up }

    public func run() async throws {
        try? await gracefulShutdown()
        let subscribers = state.withLock { state in
            state.closed = true
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { await subscriber.close() }
    }

    public func publish(_ message: ByteBuffer, to subject: String) async throws {
        deliver(message, to: subject)
    }

    public func publish(_ batch: [BusMessage]) async throws {
        for message in batch { deliver(message.payload, to: message.subject) }
    }

    public func makeSubscriber() async throws -> any BusSubscriber {
        let subscriber = MemorySubscriber(bus: self, bufferLimit: bufferLimit)
        try state.withLock { state in
            guard !state.closed else { throw BackplaneError.closed }
            state.subscribers[ObjectIdentifier(subscriber)] = subscriber
        }
        return subscriber
    }

    private func deliver(_ payload: ByteBuffer, to subject: String) {
        state.withLock { state in
            guard let targets = state.bySubject[subject] else { return }
            for subscriber in targets.values { subscriber.yield(BusMessage(subject: subject, payload: payload)) }
        }
    }

    fileprivate func update(_ subscriber: MemorySubscriber, adding: [String], removing: [String]) {
        let id = ObjectIdentifier(subscriber)
        state.withLock { state in
            for subject in adding { state.bySubject[subject, default: [:]][id] = subscriber }
            for subject in removing {
                state.bySubject[subject]?[id] = nil
                if state.bySubject[subject]?.isEmpty == true { state.bySubject[subject] = nil }
            }
        }
    }

    fileprivate func forget(_ subscriber: MemorySubscriber, subjects: Set<String>) {
        update(subscriber, adding: [], removing: Array(subjects))
        _ = state.withLock { $0.subscribers.removeValue(forKey: ObjectIdentifier(subscriber)) }
    }
}

/// A subscriber of a ``MemoryBus``.
private final class MemorySubscriber: BusSubscriber {
    let messages: BusMessages
    private let continuation: BusMessages.Continuation
    private let subjects = Mutex(Set<String>())
    private weak let bus: MemoryBus?

    init(bus: MemoryBus, bufferLimit: Int) {
        self.bus = bus
        (messages, continuation) = BusMessages.makeStream(bufferingPolicy: .bufferingNewest(bufferLimit))
    }

    /// Hands a message on (the oldest buffered one is dropped when the buffer is full).
    func yield(_ message: BusMessage) {
        continuation.yield(message)
    }

    func subscribe(_ subjects: [String]) async throws {
        guard let bus else { throw BackplaneError.closed }
        self.subjects.withLock { $0.formUnion(subjects) }
        bus.update(self, adding: subjects, removing: [])
    }

    func unsubscribe(_ subjects: [String]) async throws {
        self.subjects.withLock { $0.subtract(subjects) }
        bus?.update(self, adding: [], removing: subjects)
    }

    func close() async {
        let current = subjects.withLock { $0 }
        bus?.forget(self, subjects: current)
        continuation.finish()
    }
}
