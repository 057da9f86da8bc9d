/// The WebSocket close codes a node sends (RFC 6455 codes and ImServer's 4000-4999 codes).
public enum CloseCode: UInt16, Sendable, CaseIterable {
    /// Normal closure, answering the client's close.
    case normal = 1000
    /// The node is shutting down.
    case goingAway = 1001
    /// The client broke the WebSocket protocol (RFC 6455): an unmasked frame, reserved bits or
    /// opcodes, bad fragmentation, an invalid close frame.
    case protocolError = 1002
    /// The client sent a binary frame; protocol v1 is JSON text only.
    case unsupportedData = 1003
    /// The client sent text that is not a valid v1 frame (malformed JSON, unknown type), or
    /// text that is not UTF-8.
    case invalidPayload = 1007
    /// A frame exceeded the inbound frame size limit.
    case messageTooBig = 1009
    /// The backplane is unavailable; try again later.
    case tryAgainLater = 1013
    /// The back-end forced the user offline.
    case forcedOffline = 4003
    /// The client did not read fast enough; its queue reached the limit.
    case slowConsumer = 4008
    /// The client sent nothing (not even a pong) within the idle timeout.
    case idleTimeout = 4009
    /// The client sent more messages per second than allowed.
    case tooManyMessages = 4029

    /// The reason text sent in the close frame.
    public var reason: String {
        switch self {
        case .normal: "bye"
        case .goingAway: "server shutting down"
        case .protocolError: "protocol error"
        case .unsupportedData: "binary frames are not supported"
        case .invalidPayload: "invalid frame"
        case .messageTooBig: "frame too large"
        case .tryAgainLater: "backplane unavailable"
        case .forcedOffline: "forced offline"
        case .slowConsumer: "slow consumer"
        case .idleTimeout: "idle timeout"
        case .tooManyMessages: "too many messages"
        }
    }
}
