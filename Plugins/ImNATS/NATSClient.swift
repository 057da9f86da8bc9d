import CNATS
import Foundation
import ImBackplane
import Logging
import Metrics
import NIOPosix
import Synchronization

/// One nats.c connection: connects (and keeps reconnecting) in nats.c's own threads, reports
/// its state as a ``BackplaneHealth``, publishes and subscribes.
///
/// nats.c's connection is safe to use from any thread (its documentation says every call is),
/// so this class only guards its own state. A connection that could not connect yet keeps
/// trying in the background (`RetryOnFailedConnect`); publishes meanwhile fail at once
/// (the reconnect buffer is off), so a send never waits for a server that is not there.
final class NATSClient: Sendable {
    /// What nats.c's callbacks update; released by the closed callback (the last one).
    final class Events: Sendable {
        let health = Mutex<BackplaneHealth>(.down("not connected yet"))
        let logger: Logger
        /// Messages nats.c dropped because a subscription was over its pending limits (a slow
        /// consumer), as nats.c counts them per subscription; exported as
        /// `imserver_nats_dropped_messages`.
        let dropped = Mutex<[Int: Int64]>([:])
        private let droppedCounter = Counter(label: "imserver_nats_dropped_messages")

        init(logger: Logger) { self.logger = logger }

        /// How many times the connection was established (first connect and each reconnect):
        /// state kept on the server side that a restart can lose is set up again when it changes.
        let connects = Atomic<Int>(0)

        /// The connection was established (again).
        func connected() {
            connects.add(1, ordering: .releasing)
            went(.up)
        }

        private let streamDrops = Atomic<Int64>(0)

        /// Every message dropped so far, by nats.c's pending limits or a subscriber's stream.
        var droppedMessages: Int64 {
            dropped.withLock { $0.values.reduce(0, +) } + streamDrops.load(ordering: .relaxed)
        }

        /// A subscriber's stream was full (its reader fell behind by its whole buffer): the
        /// oldest message waiting was dropped.
        func streamDropped() {
            let total = streamDrops.add(1, ordering: .relaxed).newValue
            droppedCounter.increment()
            if total == 1 || total % 10_000 == 0 {
                logger.warning(
                    "a nats subscriber fell behind by its whole buffer; dropping its oldest messages",
                    metadata: ["droppedInAll": "\(total)"])
            }
        }

        /// nats.c reported a slow consumer on `subscription`: counts what it dropped since the
        /// last report, and logs it.
        func slowConsumer(_ subscription: OpaquePointer) {
            var total: Int64 = 0
            guard natsSubscription_GetDropped(subscription, &total) == NATS_OK else { return }
            let key = Int(bitPattern: UnsafeMutableRawPointer(subscription))
            let delta = dropped.withLock { counts in
                defer { counts[key] = total }
                return total - (counts[key] ?? 0)
            }
            guard delta > 0 else { return }
            droppedCounter.increment(by: delta)
            logger.warning(
                "nats dropped messages for a slow subscriber (over its pending limits)",
                metadata: ["dropped": "\(delta)", "droppedInAll": "\(total)"])
        }
    }

    let configuration: NATSConfiguration
    let events: Events
    /// `natsConnection *`, safe to share: nats.c guards it (see the type's comment).
    private nonisolated(unsafe) let connection: OpaquePointer
    private let closed = Atomic<Bool>(false)

    /// Creates the connection; it connects in the background. Throws only for options nats.c
    /// refuses.
    init(configuration: NATSConfiguration, logger: Logger) throws(BackplaneError) {
        self.configuration = configuration
        let events = Events(logger: logger)
        self.events = events
        var options: OpaquePointer?
        try Self.check(natsOptions_Create(&options), "creating options")
        guard let options else { throw BackplaneError.unavailable("nats: no options") }
        defer { natsOptions_Destroy(options) }
        var servers = configuration.servers.map { strdup($0) }
        defer { for server in servers { free(server) } }
        try servers.withUnsafeMutableBufferPointer { buffer throws(BackplaneError) in
            try buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { rebound throws(BackplaneError) in
                try Self.check(
                    natsOptions_SetServers(options, rebound.baseAddress, Int32(rebound.count)), "setting servers")
            }
        }
        if let user = configuration.user {
            try Self.check(natsOptions_SetUserInfo(options, user, configuration.password ?? ""), "setting the user")
        }
        if let token = configuration.token { try Self.check(natsOptions_SetToken(options, token), "setting the token") }
        if configuration.tls { try Self.check(natsOptions_SetSecure(options, true), "turning TLS on") }
        if let caFile = configuration.caFile {
            try Self.check(natsOptions_LoadCATrustedCertificates(options, caFile), "loading the CA file \(caFile)")
        }
        try Self.check(natsOptions_SetTimeout(options, configuration.commandTimeoutMilliseconds), "setting the timeout")
        try Self.check(natsOptions_SetMaxReconnect(options, -1), "allowing reconnects")
        try Self.check(natsOptions_SetReconnectWait(options, 250), "setting the reconnect wait")
        // No buffering while disconnected: a publish fails at once (at most once, never late).
        try Self.check(natsOptions_SetReconnectBufSize(options, 0), "turning the reconnect buffer off")
        let closure = Unmanaged.passRetained(events).toOpaque()
        try Self.check(
            natsOptions_SetDisconnectedCB(
                options, { _, closure in NATSClient.events(closure)?.went(.down("nats disconnected")) }, closure),
            "setting callbacks")
        try Self.check(
            natsOptions_SetReconnectedCB(options, { _, closure in NATSClient.events(closure)?.connected() }, closure),
            "setting callbacks")
        try Self.check(
            natsOptions_SetClosedCB(
                options,
                { _, closure in
                    guard let closure else { return }
                    Unmanaged<Events>.fromOpaque(closure).release()
                }, closure),
            "setting callbacks")
        try Self.check(
            natsOptions_SetErrorHandler(
                options,
                { _, subscription, status, closure in
                    guard status == NATS_SLOW_CONSUMER, let subscription else { return }
                    NATSClient.events(closure)?.slowConsumer(subscription)
                }, closure),
            "setting the error handler")
        try Self.check(
            natsOptions_SetRetryOnFailedConnect(
                options, true, { _, closure in NATSClient.events(closure)?.connected() }, closure),
            "setting retries")
        var connection: OpaquePointer?
        let status = natsConnection_Connect(&connection, options)
        guard status == NATS_OK || status == NATS_NOT_YET_CONNECTED, let connection else {
            Unmanaged<Events>.fromOpaque(closure).release()
            throw BackplaneError.unavailable("nats: cannot connect: \(Self.text(status))")
        }
        if status == NATS_OK { events.connected() }
        self.connection = connection
    }

    deinit { close() }

    var health: BackplaneHealth { events.health.withLock { $0 } }

    /// Whether ``close()`` was called: the connection is gone for good.
    var isClosed: Bool { closed.load(ordering: .acquiring) }

    /// Publishes `payload` on `subject` (nats.c sends it from its own flusher).
    func publish(_ payload: UnsafeRawBufferPointer, to subject: String) throws(BackplaneError) {
        guard !closed.load(ordering: .acquiring) else { throw BackplaneError.closed }
        let status = natsConnection_Publish(connection, subject, payload.baseAddress, Int32(payload.count))
        guard status == NATS_OK else { throw BackplaneError.unavailable("nats: publish failed: \(Self.text(status))") }
    }

    /// Publishes `payload` with `headers` on `subject`, asking for the answer on `reply`.
    func publish(
        _ payload: [UInt8], to subject: String, reply: String, headers: [(String, String)]
    ) throws(BackplaneError) {
        guard !closed.load(ordering: .acquiring) else { throw BackplaneError.closed }
        var message: OpaquePointer?
        let created = payload.withUnsafeBytes { bytes in
            natsMsg_Create(
                &message, subject, reply, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        }
        try Self.check(created, "making a message")
        guard let message else { throw BackplaneError.unavailable("nats: no message") }
        defer { natsMsg_Destroy(message) }
        for (name, value) in headers { try Self.check(natsMsgHeader_Set(message, name, value), "setting a header") }
        let status = natsConnection_PublishMsg(connection, message)
        guard status == NATS_OK else { throw BackplaneError.unavailable("nats: publish failed: \(Self.text(status))") }
    }

    /// Runs `body` with a JetStream context of this connection (for nats.c's KV watchers).
    func withJetStream<T>(_ body: (OpaquePointer) throws(BackplaneError) -> T) throws(BackplaneError) -> T {
        guard !closed.load(ordering: .acquiring) else { throw BackplaneError.closed }
        var context: OpaquePointer?
        try Self.check(natsConnection_JetStream(&context, connection, nil), "opening JetStream")
        guard let context else { throw BackplaneError.unavailable("nats: no JetStream context") }
        defer { jsCtx_Destroy(context) }
        return try body(context)
    }

    /// Subscribes `subject`, delivering to `handler` with `closure` on nats.c's thread;
    /// `completed` runs once no more deliveries can come (after ``unsubscribe(_:)``).
    func subscribe(
        _ subject: String, handler: natsMsgHandler, closure: UnsafeMutableRawPointer,
        completed: natsOnCompleteCB
    ) throws(BackplaneError) -> OpaquePointer {
        guard !closed.load(ordering: .acquiring) else { throw BackplaneError.closed }
        var subscription: OpaquePointer?
        try Self.check(natsConnection_Subscribe(&subscription, connection, subject, handler, closure), "subscribing")
        guard let subscription else { throw BackplaneError.unavailable("nats: no subscription") }
        natsSubscription_SetOnCompleteCB(subscription, completed, closure)
        // Bounded: beyond these nats.c drops and counts (a slow consumer).
        natsSubscription_SetPendingLimits(subscription, 1 << 20, 256 << 20)
        return subscription
    }

    /// Ends a subscription made by ``subscribe(_:handler:closure:completed:)``.
    func unsubscribe(_ subscription: OpaquePointer) {
        events.dropped.withLock { _ = $0.removeValue(forKey: Int(bitPattern: UnsafeMutableRawPointer(subscription))) }
        natsSubscription_Unsubscribe(subscription)
        natsSubscription_Destroy(subscription)
    }

    /// Round trip to the server within the command timeout (`PING`/`PONG`).
    func ping() -> Bool {
        guard !closed.load(ordering: .acquiring) else { return false }
        return natsConnection_FlushTimeout(connection, configuration.commandTimeoutMilliseconds) == NATS_OK
    }

    /// Threads for nats.c's blocking calls (a PING waits for its PONG, a scan for its keys, each
    /// up to the command timeout). Not `NIOThreadPool.singleton`: a NATS server that hangs
    /// would hold its few threads and starve everything else in the process that uses it.
    static let blockingCalls: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 4)
        pool.start()
        return pool
    }()

    /// Sends a PING and records whether the PONG came within the command timeout.
    func checkHealth() async {
        let answered = (try? await Self.blockingCalls.runIfActive { self.ping() }) ?? false
        events.went(answered ? .up : .down("nats did not answer PING within the command timeout"))
    }

    /// Closes the connection (idempotent). nats.c's close joins its threads, which can take a
    /// while (a reconnect in progress), so it runs on ``blockingCalls``, never on the caller's
    /// thread (a task's thread is one of the few the whole process shares).
    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        events.went(.down("closed"))
        let handle = NATSHandle(pointer: connection)
        Self.blockingCalls.submit { _ in
            natsConnection_Close(handle.pointer)
            natsConnection_Destroy(handle.pointer)
        }
    }

    private static func events(_ closure: UnsafeMutableRawPointer?) -> Events? {
        closure.map { Unmanaged<Events>.fromOpaque($0).takeUnretainedValue() }
    }

    static func check(_ status: natsStatus, _ what: String) throws(BackplaneError) {
        guard status == NATS_OK else { throw BackplaneError.unavailable("nats: \(what): \(text(status))") }
    }

    static func text(_ status: natsStatus) -> String {
        natsStatus_GetText(status).map { String(cString: $0) } ?? "status \(status.rawValue)"
    }
}

extension NATSClient.Events {
    /// Records a change of the connection's state.
    func went(_ health: BackplaneHealth) {
        let changed = self.health.withLock { current in
            defer { current = health }
            return current.isUp != health.isUp
        }
        if changed { logger.log(level: health.isUp ? .info : .warning, "nats \(health)") }
    }
}

/// A nats.c object (`natsConnection *`, `natsSubscription *`) handed between threads. nats.c
/// guards these objects itself (every call on them is thread-safe), so passing the pointer is
/// safe; who may still use it is decided by the owner's lock or closed flag.
struct NATSHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}
