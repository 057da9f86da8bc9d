public import ImBackplane
public import Logging
public import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// ``Bus`` over PostgreSQL's `LISTEN`/`NOTIFY` (``NotificationCodec`` maps subjects and
/// payloads). A batch is one statement (`pg_notify` over arrays), so its notifications commit
/// together and in order; bodies over the 8,000-byte limit go through the `payloads` table.
/// Subscriptions share one connection of their own that ``run()`` keeps open, re-listening
/// every subject after a reconnect; postgres-nio dispatches each notification to its channel's
/// listeners by name, so a process listening to 10,000 channels pays no per-channel cost.
public final class PostgresBus: Bus {
    let database: PostgresDatabase
    private let ownsDatabase: Bool
    let listener: PostgresListener
    private let sender = randomHex(bytes: 4)
    private let sequence = Atomic<UInt64>(0)
    private let subscriberBufferLimit: Int

    init(database: PostgresDatabase, ownsDatabase: Bool, subscriberBufferLimit: Int = 1 << 20) {
        self.database = database
        self.ownsDatabase = ownsDatabase
        self.listener = PostgresListener(database: database)
        self.subscriberBufferLimit = max(subscriberBufferLimit, 1)
    }

    /// A bus with a pool of its own. Each subscriber buffers at most `subscriberBufferLimit`
    /// messages its reader has not taken; beyond, the oldest are dropped and counted
    /// (``droppedMessages``).
    public convenience init(
        configuration: PostgresConfiguration, logger: Logger, subscriberBufferLimit: Int = 1 << 20
    ) throws(BackplaneError) {
        self.init(
            database: try PostgresDatabase(configuration: configuration, logger: logger), ownsDatabase: true,
            subscriberBufferLimit: subscriberBufferLimit)
    }

    /// Messages dropped for subscribers that fell behind by their whole buffer, also exported
    /// as `imserver_postgres_dropped_messages` and logged.
    public var droppedMessages: Int64 { listener.droppedMessages }

    public var health: BackplaneHealth {
        let listening = listener.health
        guard ownsDatabase else { return listening }
        return database.health.isUp ? listening : database.health
    }

    /// Keeps the listening connection open (and runs the pool when this bus owns it).
    public func run() async throws {
        let listener = self.listener
        let database = self.database
        let owns = ownsDatabase
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await listener.run() }
            if owns { group.addTask { try await database.run() } }
            try await group.waitForAll()
        }
    }

    public func publish(_ message: ByteBuffer, to subject: String) async throws {
        try await publish([BusMessage(subject: subject, payload: message)])
    }

    public func publish(_ batch: [BusMessage]) async throws {
        guard !batch.isEmpty else { return }
        let schema = database.schema
        var channels: [String] = []
        var payloads: [String] = []
        channels.reserveCapacity(batch.count)
        payloads.reserveCapacity(batch.count)
        for message in batch {
            let tag = sender + "." + String(sequence.add(1, ordering: .relaxed).newValue, radix: 36)
            channels.append(NotificationCodec.channel(of: message.subject, schema: schema))
            if let inline = NotificationCodec.inlinePayload(message.payload, subject: message.subject, tag: tag) {
                payloads.append(inline)
            } else {
                let body = message.payload
                guard
                    let id = try await database.first(
                        "storing a large payload", Int64.self,
                        {
                            "INSERT INTO \(unescaped: schema).payloads (body) VALUES (\(body)) RETURNING id"
                        })
                else { throw BackplaneError.protocolViolation("postgres: no id for a stored payload") }
                payloads.append(NotificationCodec.rowPayload(id, subject: message.subject, tag: tag))
            }
        }
        try await database.execute("publish") {
            "SELECT pg_notify(c, p) FROM unnest(\(channels)::text[], \(payloads)::text[]) AS t(c, p)"
        }
    }

    public func makeSubscriber() async throws -> any BusSubscriber {
        let subscriber = PostgresSubscriber(listener: listener, bufferLimit: subscriberBufferLimit)
        listener.add(subscriber)
        return subscriber
    }
}
