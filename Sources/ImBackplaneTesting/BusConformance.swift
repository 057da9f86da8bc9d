public import ImBackplane
import Synchronization

/// Checks that a `Bus` keeps the contract of `Bus` and `BusSubscriber`; a plugin's tests run
/// every check.
///
/// Each check makes a fresh bus with `makeBus`, runs the bus's `run()` in a child task for the
/// duration of the check (cancelled at the end; ``Check/callsBeforeRunWaitOrThrow`` calls the
/// bus first), waits until `health` is `.up`, and uses subjects
/// under a random prefix, so checks can run in parallel against one shared real server. Events
/// are awaited with a timeout; that something is *not* delivered is shown by publishing a marker
/// afterwards and requiring the marker to be the next message. Every error a call throws must be
/// a `BackplaneError`: another type fails the check, naming the call and the type.
///
/// ```swift
/// @Test(arguments: BusConformance.Check.allCases)
/// func bus(_ check: BusConformance.Check) async throws {
///     try await BusConformance(makeBus: { try await MyBus.connect(to: url) }).run(check)
/// }
/// ```
public struct BusConformance: Sendable {
    /// One contract clause.
    public enum Check: String, CaseIterable, Sendable {
        /// A message published to a subscribed subject reaches the subscriber.
        case deliversToSubscriber
        /// After `unsubscribe(_:)` returns, messages to that subject are not delivered to the
        /// subscriber any more (a witness subscriber proves they were published).
        case notDeliveredAfterUnsubscribe
        /// Unsubscribing subjects not subscribed (by this subscriber or at all), and empty
        /// `subscribe`/`unsubscribe` calls, change nothing for anybody.
        case unsubscribingUnknownSubjectIsHarmless
        /// A message the backend accepted before `subscribe(_:)` is not delivered to the new
        /// subscriber.
        case notDeliveredBeforeSubscribe
        /// Several subscribers of one subject each get exactly one copy of every message.
        case everySubscriberGetsOneCopy
        /// Subscribing to a subject twice (or twice in one call) delivers each message once, and one
        /// `unsubscribe` then removes it.
        case subscribingTwiceDeliversOnce
        /// A subscriber gets only the subjects it subscribed to, not ones sharing a prefix.
        case onlySubscribedSubjects
        /// One subscriber unsubscribing a subject does not stop its delivery to the others.
        case unsubscribeKeepsOtherSubscribers
        /// One subscriber closing does not stop delivery to the others of the same subjects.
        case closeKeepsOtherSubscribers
        /// 1,000 numbered messages from one publisher to each of two subjects, interleaved, all
        /// arrive in order per subject.
        case orderPerPublisherAndSubject
        /// A batch publish arrives complete and in order per subject, before later single
        /// publishes; an empty batch is accepted.
        case batchArrivesCompleteInOrder
        /// Binary payloads (empty, every byte value, zero bytes, invalid UTF-8, a buffer read from
        /// a non-zero reader index) arrive byte for byte.
        case payloadBytesIntact
        /// A 1 MiB binary payload arrives byte for byte.
        case largePayloadIntact
        /// One `subscribe` call with 100 subjects delivers each; one `unsubscribe` removes them all.
        case manySubjects
        /// `close()` finishes `messages`, also for a subscriber that never subscribed, and may be
        /// called twice; publishing to the subject afterwards is fine.
        case closeFinishesMessages
        /// `health` is `.up` while `run()` runs and the backend answers.
        case healthUpWhileRunning
        /// Before `run()`: `publish`, `makeSubscriber` and `subscribe` each return or throw a
        /// `BackplaneError` within the timeout; once `run()` has connected, a subscriber
        /// subscribed before it (even if `subscribe` threw) receives messages.
        case callsBeforeRunWaitOrThrow
        /// After the backend restarts (the plugin's `restartBackend`), within the reconnect
        /// timeout: a subscriber subscribed before the restart receives messages published
        /// after it without subscribing again, publishing works, new subscribers work, and
        /// `health` is `.up` again; meanwhile every failure is a `BackplaneError`. Not
        /// applicable (the check records why) when no `restartBackend` is given.
        case survivesBackendRestart
    }

    /// Makes the bus under test; called once per check.
    public let makeBus: @Sendable () async throws -> any Bus
    /// How long a check waits for one expected event (a message), and how long a call before
    /// `run()` may take.
    public let timeout: Duration
    /// Restarts the backend (stop it and start it again on the same address), or cuts the
    /// bus's connections; `nil` when there is no backend to restart (an in-process bus).
    public let restartBackend: (@Sendable () async throws -> Void)?
    /// How long the bus may take to serve: after `run()` started, and after `restartBackend`
    /// returned.
    public let reconnectTimeout: Duration

    /// Checks buses made by `makeBus`, waiting up to `timeout` for each expected event; with
    /// `restartBackend`, also that the bus comes back within `reconnectTimeout` of a restart.
    /// Give ``Check/survivesBackendRestart`` a backend of its own: it disturbs every client.
    public init(
        timeout: Duration = .seconds(5), reconnectTimeout: Duration = .seconds(30),
        restartBackend: (@Sendable () async throws -> Void)? = nil,
        makeBus: @escaping @Sendable () async throws -> any Bus
    ) {
        self.timeout = timeout
        self.reconnectTimeout = reconnectTimeout
        self.restartBackend = restartBackend
        self.makeBus = makeBus
    }

    /// Runs one check on a fresh bus; throws ``ConformanceFailure`` describing what broke, or
    /// returns whether it passed or did not apply (and why).
    @discardableResult
    public func run(_ check: Check) async throws -> ConformanceOutcome {
        if check == .survivesBackendRestart && restartBackend == nil {
            return .notApplicable("no restartBackend was given: the bus has no backend to restart (in-process)")
        }
        let bus: any Bus
        do {
            bus = try await makeBus()
        } catch {
            throw ConformanceFailure(check: check.rawValue, message: "makeBus threw \(error)")
        }
        let harness = BusHarness(
            bus: bus, check: check.rawValue, timeout: timeout,
            reconnectTimeout: reconnectTimeout, restartBackend: restartBackend)
        let prelude: (() async throws -> Void)? =
            check == .callsBeforeRunWaitOrThrow ? { try await harness.callsBeforeRun() } : nil
        try await whileRunning(
            bus, harness: harness, beforeRun: prelude,
            body: {
                try await waitUntilUp({ bus.health }, "the bus's", timeout: reconnectTimeout, harness: harness)
                try await harness.perform(check)
            },
            tearDown: { await harness.tearDown() })
        return .passed
    }
}

extension BusHarness {
    /// Runs the body of `check`.
    func perform(_ check: BusConformance.Check) async throws {
        switch check {
        case .deliversToSubscriber: try await deliversToSubscriber()
        case .notDeliveredAfterUnsubscribe: try await notDeliveredAfterUnsubscribe()
        case .unsubscribingUnknownSubjectIsHarmless: try await unsubscribingUnknownSubjectIsHarmless()
        case .notDeliveredBeforeSubscribe: try await notDeliveredBeforeSubscribe()
        case .everySubscriberGetsOneCopy: try await everySubscriberGetsOneCopy()
        case .subscribingTwiceDeliversOnce: try await subscribingTwiceDeliversOnce()
        case .onlySubscribedSubjects: try await onlySubscribedSubjects()
        case .unsubscribeKeepsOtherSubscribers: try await unsubscribeKeepsOtherSubscribers()
        case .closeKeepsOtherSubscribers: try await closeKeepsOtherSubscribers()
        case .orderPerPublisherAndSubject: try await orderPerPublisherAndSubject()
        case .batchArrivesCompleteInOrder: try await batchArrivesCompleteInOrder()
        case .payloadBytesIntact: try await payloadBytesIntact()
        case .largePayloadIntact: try await largePayloadIntact()
        case .manySubjects: try await manySubjects()
        case .closeFinishesMessages: try await closeFinishesMessages()
        case .healthUpWhileRunning: try await healthUpWhileRunning()
        case .callsBeforeRunWaitOrThrow: try await callsAfterRun()
        case .survivesBackendRestart: try await survivesBackendRestart()
        }
    }
}
