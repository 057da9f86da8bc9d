public import ImCore
public import NIOHTTP1

/// The outcome of checking a connection's token and the node's limits, before the transport
/// accepts the connection.
public enum Admission: Sendable {
    /// The token is valid, unused and within limits: accept the connection and hand it to
    /// ``NodeCore/open(_:on:output:)``.
    case admitted(VerifiedToken)
    /// Refused; answer the request with the refusal's status and reason.
    case refused(HandshakeRefusal)
}

/// Why a handshake was refused: an HTTP status and a one-line reason for the client.
public struct HandshakeRefusal: Error, Sendable, CustomStringConvertible {
    /// The status to answer with (400, 401, 404, 429, 503).
    public var status: HTTPResponseStatus
    /// A one-line reason, safe to show the client.
    public var reason: String

    /// A refusal with `status` and `reason`.
    public init(_ status: HTTPResponseStatus, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { "\(status.code) \(reason)" }
}
