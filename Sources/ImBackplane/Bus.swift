public import NIOCore
public import ServiceLifecycle

/// Publish/subscribe between processes: the half of a backplane that moves messages.
///
/// Contract (checked by `BusConformance` in `ImTesting`):
/// - **At most once.** A message reaches every subscriber that was subscribed to its subject
///   when the backend accepted it, at most once. Messages published while a subscriber is
///   disconnected from the backend are lost; the bus reports ``health`` `.down` meanwhile.
/// - **Order.** Messages from one publisher to one subject arrive in the order published.
/// - **Lifecycle.** ``run()`` owns connections and reconnects with backoff; it returns on
///   graceful shutdown. `publish` and `makeSubscriber` may be called before `run()` has
///   connected and must then either wait a bounded time or throw ``BackplaneError``. A process
///   runs the bus through its ``Backplane``, which runs the bus and the presence as one service.
/// - **Reconnects.** After the backend comes back, subscribers subscribed before the outage
///   receive again without subscribing again, and publishing works again.
/// - **Never crashes the caller.** Every failure is a thrown ``BackplaneError``.
public protocol Bus: Service {
    /// Publishes one message to a subject.
    func publish(_ message: ByteBuffer, to subject: String) async throws
    /// Publishes several messages, in one round trip where the backend allows, in order.
    func publish(_ batch: [BusMessage]) async throws
    /// Makes a subscriber whose subject set can change while it lives.
    func makeSubscriber() async throws -> any BusSubscriber
    /// Whether the bus is connected to its backend now.
    var health: BackplaneHealth { get }
}

/// One subscriber of a ``Bus``: a changing set of subjects and one stream of their messages.
///
/// Subscribing to a subject twice is the same as once; unsubscribing a subject not subscribed
/// does nothing. After ``subscribe(_:)`` returns, messages published to those subjects are
/// delivered; after ``unsubscribe(_:)`` returns, no more messages for those subjects are
/// delivered. If either call throws, the subscriber keeps the subject set as the call changed
/// it and subscribes that set again after reconnecting. ``close()`` ends ``messages``.
public protocol BusSubscriber: Sendable {
    /// Adds subjects; returns once the backend confirmed the subscription.
    func subscribe(_ subjects: [String]) async throws
    /// Removes subjects.
    func unsubscribe(_ subjects: [String]) async throws
    /// Every message for the subscribed subjects, in arrival order.
    var messages: BusMessages { get }
    /// Ends the subscription and finishes ``messages``.
    func close() async
}

/// One message on a bus subject.
public struct BusMessage: Sendable {
    /// The subject it was published to.
    public var subject: String
    /// The message's bytes (an encoded ``Envelope`` for ImServer's own subjects).
    public var payload: ByteBuffer

    /// A message for a subject.
    public init(subject: String, payload: ByteBuffer) {
        self.subject = subject
        self.payload = payload
    }
}

/// The stream of messages a ``BusSubscriber`` receives.
public typealias BusMessages = AsyncStream<BusMessage>

/// Whether a backplane part is connected to its backend.
public enum BackplaneHealth: Sendable, Equatable, CustomStringConvertible {
    /// Connected and serving.
    case up
    /// Disconnected or failing; the reason is for operators.
    case down(String)

    /// Whether the state is ``up``.
    public var isUp: Bool { self == .up }

    public var description: String {
        switch self {
        case .up: "up"
        case .down(let reason): "down: \(reason)"
        }
    }
}

/// A failure of a backplane operation.
public enum BackplaneError: Error, CustomStringConvertible {
    /// The backend is not reachable now; the operation did nothing.
    case unavailable(String)
    /// The backend did not answer within the command timeout.
    case timedOut(operation: String)
    /// The backend answered something the plugin does not understand.
    case protocolViolation(String)
    /// The bus or subscriber was closed.
    case closed

    public var description: String {
        switch self {
        case .unavailable(let reason): "backplane unavailable: \(reason)"
        case .timedOut(let operation): "backplane timed out during \(operation)"
        case .protocolViolation(let detail): "backplane protocol violation: \(detail)"
        case .closed: "backplane closed"
        }
    }
}
