import CNATS
public import ImBackplane
public import Logging
public import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// ``Bus`` on core NATS subjects: each bus subject is one token under the prefix
/// (`<prefix>.<token>`, see ``SubjectToken``), published and subscribed on one nats.c
/// connection per process. nats.c reconnects and subscribes again by itself; while it is
/// disconnected, publishes fail at once and health is `.down`.
public final class NATSBus: Bus {
    let client: NATSClient
    private let prefix: String
    /// How many messages a subscriber's stream holds for a reader that falls behind; beyond
    /// that the oldest are dropped and counted (``droppedMessages``).
    let subscriberBufferLimit: Int

    /// A bus on the servers `configuration` names; it connects in the background.
    public convenience init(
        configuration: NATSConfiguration, logger: Logger, subscriberBufferLimit: Int = 1 << 20
    ) throws(BackplaneError) {
        self.init(
            client: try NATSClient(configuration: configuration, logger: logger),
            subscriberBufferLimit: subscriberBufferLimit)
    }

    /// A bus on `client`'s connection; the bus runs it (health checks, closing at the end).
    init(client: NATSClient, subscriberBufferLimit: Int = 1 << 20) {
        self.client = client
        self.prefix = client.configuration.prefix
        self.subscriberBufferLimit = max(subscriberBufferLimit, 1)
    }

    /// Messages dropped for subscribers that fell behind (nats.c's pending limits, or a
    /// subscriber's own buffer), also exported as `imserver_nats_dropped_messages` and logged.
    public var droppedMessages: Int64 { client.events.droppedMessages }

    public var health: BackplaneHealth { client.health }

    /// Pings the server every second (a round trip, so a hung server is `.down`), until graceful
    /// shutdown; then closes the connection.
    public func run() async throws {
        let client = self.client
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await client.checkHealth()
                try? await Task.sleep(for: .seconds(1))
            }
        }
        client.close()
    }

    /// The NATS subject of bus subject `subject`.
    func natsSubject(_ subject: String) -> String { prefix + "." + SubjectToken.encode(subject) }

    public func publish(_ message: ByteBuffer, to subject: String) async throws {
        let name = natsSubject(subject)
        try message.withUnsafeReadableBytes { bytes throws(BackplaneError) in try client.publish(bytes, to: name) }
    }

    public func publish(_ batch: [BusMessage]) async throws {
        for message in batch {
            let name = natsSubject(message.subject)
            try message.payload.withUnsafeReadableBytes { bytes throws(BackplaneError) in
                try client.publish(bytes, to: name)
            }
        }
    }

    public func makeSubscriber() async throws -> any BusSubscriber {
        NATSSubscriber(bus: self)
    }
}

/// Where one subscription delivers: retained by nats.c's closure until the subscription
/// completes.
final class DeliveryTarget: Sendable {
    let subject: String
    let continuation: BusMessages.Continuation
    let events: NATSClient.Events

    init(subject: String, continuation: BusMessages.Continuation, events: NATSClient.Events) {
        self.subject = subject
        self.continuation = continuation
        self.events = events
    }
}

/// One subscriber: a nats.c subscription per subject, each delivering into one stream.
final class NATSSubscriber: BusSubscriber {
    let messages: BusMessages
    private let continuation: BusMessages.Continuation
    private let bus: NATSBus
    /// One nats.c subscription per subject: subscribing a subject twice changes nothing, and one
    /// unsubscribe ends it (the Bus contract).
    private let subscriptions = Mutex<(open: [String: NATSHandle], closed: Bool)>(([:], false))

    init(bus: NATSBus) {
        self.bus = bus
        (messages, continuation) = BusMessages.makeStream(
            bufferingPolicy: .bufferingNewest(bus.subscriberBufferLimit))
    }

    func subscribe(_ subjects: [String]) async throws {
        for subject in subjects {
            let known = try subscriptions.withLock { state throws(BackplaneError) -> Bool in
                guard !state.closed else { throw BackplaneError.closed }
                return state.open[subject] != nil
            }
            if known { continue }
            let target = DeliveryTarget(subject: subject, continuation: continuation, events: bus.client.events)
            let closure = Unmanaged.passRetained(target).toOpaque()
            let pointer: OpaquePointer
            do {
                pointer = try bus.client.subscribe(
                    bus.natsSubject(subject), handler: deliver, closure: closure, completed: release)
            } catch {
                Unmanaged<DeliveryTarget>.fromOpaque(closure).release()
                throw error
            }
            let duplicate = subscriptions.withLock { state -> Bool in
                guard state.open[subject] == nil else { return true }
                state.open[subject] = NATSHandle(pointer: pointer)
                return false
            }
            if duplicate { bus.client.unsubscribe(pointer) }
        }
    }

    func unsubscribe(_ subjects: [String]) async throws {
        for subject in subjects {
            let ended = subscriptions.withLock { $0.open.removeValue(forKey: subject) }
            if let ended { bus.client.unsubscribe(ended.pointer) }
        }
    }

    func close() async {
        let all = subscriptions.withLock { state in
            state.closed = true
            defer { state.open = [:] }
            return Array(state.open.values)
        }
        for subscription in all { bus.client.unsubscribe(subscription.pointer) }
        continuation.finish()
    }
}

/// nats.c's message callback: copies the payload into a buffer and hands it to the
/// subscriber's stream (no task, no lock held).
private func deliver(
    _ connection: OpaquePointer?, _ subscription: OpaquePointer?, _ message: OpaquePointer?,
    _ closure: UnsafeMutableRawPointer?
) {
    guard let message else { return }
    defer { natsMsg_Destroy(message) }
    guard let closure else { return }
    let target = Unmanaged<DeliveryTarget>.fromOpaque(closure).takeUnretainedValue()
    let length = Int(natsMsg_GetDataLength(message))
    var payload = ByteBuffer()
    if length > 0, let data = natsMsg_GetData(message) {
        payload.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
    }
    if case .dropped = target.continuation.yield(BusMessage(subject: target.subject, payload: payload)) {
        target.events.streamDropped()
    }
}

/// nats.c's completion callback: no more deliveries can come, so the target is released.
private func release(_ closure: UnsafeMutableRawPointer?) {
    guard let closure else { return }
    Unmanaged<DeliveryTarget>.fromOpaque(closure).release()
}
