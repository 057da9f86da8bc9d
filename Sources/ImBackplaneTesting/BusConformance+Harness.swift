import ImBackplane
import NIOCore
import Synchronization

/// What one bus check works with: the bus, its subjects and the subscribers it made.
final class BusHarness: ConformanceHarness {
    /// The bus under test, running.
    let bus: any Bus
    /// The check's name, for failures.
    let check: String
    /// How long to wait for one expected event.
    let timeout: Duration
    /// How long the bus may take to serve again after a backend restart.
    let reconnectTimeout: Duration
    /// Restarts the backend, if the plugin can.
    let restartBackend: (@Sendable () async throws -> Void)?
    /// Starts every subject of this check: `conformance.<random hex>`.
    let prefix: String
    private let inboxes = Mutex<[Inbox]>([])
    /// The subscriber made before `run()`, if the bus gave one.
    let early = Mutex<Inbox?>(nil)

    /// A harness for `check` on `bus`.
    init(
        bus: any Bus, check: String, timeout: Duration, reconnectTimeout: Duration,
        restartBackend: (@Sendable () async throws -> Void)?
    ) {
        self.bus = bus
        self.check = check
        self.timeout = timeout
        self.reconnectTimeout = reconnectTimeout
        self.restartBackend = restartBackend
        self.prefix = "conformance." + randomHex(bytes: 8)
    }

    /// The subject `name` under this check's prefix.
    func subject(_ name: String) -> String { prefix + "." + name }

    /// A failure of this check; subjects are shown without the random prefix.
    func failure(_ message: String) -> ConformanceFailure {
        let short = message.replacing(prefix + ".", with: "")
        return ConformanceFailure(check: check, message: short + " [subjects shown without the prefix '\(prefix).']")
    }

    /// Publishes `text` as UTF-8 to `subject`.
    func publish(_ text: String, to subject: String) async throws {
        try await publish(ByteBuffer(string: text), to: subject, named: "\"\(text)\"")
    }

    /// Publishes `payload` to `subject`; `name` describes it in failures.
    func publish(_ payload: ByteBuffer, to subject: String, named name: String) async throws {
        try await attempt("publish(\(name), to: \(subject))") { try await bus.publish(payload, to: subject) }
    }

    /// Publishes texts as one batch.
    func publish(batch: [(text: String, subject: String)]) async throws {
        let messages = batch.map { BusMessage(subject: $0.subject, payload: ByteBuffer(string: $0.text)) }
        try await attempt("publish(batch of \(messages.count))") { try await bus.publish(messages) }
    }

    /// A new subscriber called `name` (in failures), subscribed to `subjects` if any.
    func inbox(_ name: String, to subjects: [String] = []) async throws -> Inbox {
        let subscriber = try await attempt("makeSubscriber()") { try await bus.makeSubscriber() }
        let made = keep(subscriber, named: name)
        if !subjects.isEmpty { try await made.subscribe(subjects) }
        return made
    }

    /// An inbox reading `subscriber`, closed at tear-down.
    func keep(_ subscriber: any BusSubscriber, named name: String) -> Inbox {
        let made = Inbox(name: name, subscriber: subscriber, harness: self)
        inboxes.withLock { $0.append(made) }
        return made
    }

    /// Closes every subscriber made and stops reading their messages.
    func tearDown() async {
        let all = inboxes.withLock { $0 }
        for inbox in all { await inbox.stop() }
    }
}

/// One subscriber under test, its messages read into a queue so they can be awaited with a timeout.
final class Inbox: Sendable {
    /// What arrived, or did not.
    enum Arrival {
        /// A message.
        case message(BusMessage)
        /// `messages` finished.
        case ended
        /// Nothing within the timeout.
        case nothing
    }

    /// The subscriber's name in failures.
    let name: String
    /// The subscriber.
    let subscriber: any BusSubscriber
    private let harness: BusHarness
    private let queue = AsyncQueue<BusMessage>()
    private let pump: Task<Void, Never>

    /// Starts reading `subscriber.messages`.
    init(name: String, subscriber: any BusSubscriber, harness: BusHarness) {
        self.name = name
        self.subscriber = subscriber
        self.harness = harness
        let queue = self.queue
        let messages = subscriber.messages
        pump = Task {
            for await message in messages { queue.push(message) }
            queue.finish()
        }
    }

    /// Adds subjects.
    func subscribe(_ subjects: [String]) async throws {
        try await harness.attempt("\(name).subscribe(\(subjects))") { try await subscriber.subscribe(subjects) }
    }

    /// Removes subjects.
    func unsubscribe(_ subjects: [String]) async throws {
        try await harness.attempt("\(name).unsubscribe(\(subjects))") { try await subscriber.unsubscribe(subjects) }
    }

    /// Closes the subscriber.
    func close() async { await subscriber.close() }

    /// Closes the subscriber and stops reading.
    func stop() async {
        await subscriber.close()
        pump.cancel()
        await pump.value
    }

    /// The next arrival, waiting up to `timeout` (the harness's by default).
    func next(timeout: Duration? = nil) async -> Arrival {
        do {
            guard let message = try await queue.next(timeout: timeout ?? harness.timeout) else { return .ended }
            return .message(message)
        } catch {
            return .nothing
        }
    }

    /// The next message, which must come within the timeout; `why` explains the expectation.
    func nextMessage(_ why: String) async throws -> BusMessage {
        switch await next() {
        case .message(let message): return message
        case .ended: throw harness.failure("\(name): messages finished while waiting for a message (\(why))")
        case .nothing: throw harness.failure("\(name): no message within \(harness.timeout) (\(why))")
        }
    }

    /// Requires the next message to be `text` on `subject`; `why` explains the expectation.
    func expect(_ text: String, on subject: String, _ why: String) async throws {
        try await expect(ByteBuffer(string: text), named: "\"\(text)\"", on: subject, why)
    }

    /// Requires the next message to be exactly `payload` on `subject`.
    func expect(_ payload: ByteBuffer, named payloadName: String, on subject: String, _ why: String) async throws {
        let wanted = "\(payloadName) on \(subject)"
        switch await next() {
        case .ended:
            throw harness.failure("\(name): messages finished while waiting for \(wanted) (\(why))")
        case .nothing:
            throw harness.failure("\(name): \(wanted) did not arrive within \(harness.timeout) (\(why))")
        case .message(let message):
            guard message.subject == subject, message.payload.readableBytesView.elementsEqual(payload.readableBytesView)
            else {
                throw harness.failure("\(name): expected \(wanted) next (\(why)), but received \(describe(message))")
            }
        }
    }

    /// Requires the next messages to be `expected` in any order (they are on different subjects).
    func expectAll(_ expected: [(text: String, subject: String)], _ why: String) async throws {
        var missing = expected.map { "\"\($0.text)\" on \($0.subject)" }
        while !missing.isEmpty {
            let message = try await nextMessage("still waiting for \(list(missing)): \(why)")
            let got = describe(message)
            guard let index = missing.firstIndex(of: got) else {
                throw harness.failure("\(name): received \(got), expected only \(list(missing)) (\(why))")
            }
            missing.remove(at: index)
        }
    }

    /// Requires `messages` to finish within the timeout with nothing before the end.
    func expectEnd(_ why: String) async throws {
        switch await next() {
        case .ended: return
        case .nothing: throw harness.failure("\(name): messages did not finish within \(harness.timeout) (\(why))")
        case .message(let message):
            throw harness.failure("\(name): expected messages to finish (\(why)), but received \(describe(message))")
        }
    }
}

/// A message for failures: its text if short printable UTF-8, else its size, and its subject.
func describe(_ message: BusMessage) -> String {
    "\(describe(message.payload)) on \(message.subject)"
}

/// A payload for failures: its text if short printable UTF-8, else its size.
func describe(_ payload: ByteBuffer) -> String {
    let bytes = Array(payload.readableBytesView)
    if bytes.count <= 80, let text = String(validating: bytes, as: UTF8.self),
        text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F })
    {
        return "\"\(text)\""
    }
    return "<\(bytes.count) bytes>"
}
