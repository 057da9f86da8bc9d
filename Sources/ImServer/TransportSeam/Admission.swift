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
    /// The cause, as a stable label for metrics (`imserver_handshakes_refused_total{reason}`):
    /// several causes share a status (429: the source's rate, the node's rate, the user's limit).
    public enum Cause: String, Sendable, CaseIterable {
        /// Not a well-formed request (a WebSocket upgrade missing a header, say).
        case malformedRequest = "malformed_request"
        /// No endpoint at the request's path.
        case unknownPath = "unknown_path"
        /// The request carried no token.
        case tokenMissing = "token_missing"
        /// The token is not valid: malformed, wrong signature or algorithm, lifetime too long.
        case tokenInvalid = "token_invalid"
        /// The token has expired.
        case tokenExpired = "token_expired"
        /// The token was used before.
        case tokenReplayed = "token_replayed"
        /// The source address is over `limits.handshakesPerSource`.
        case sourceRate = "source_rate"
        /// The node is over `limits.handshakesPerSecond`.
        case nodeRate = "node_rate"
        /// The user holds `limits.connectionsPerUser` connections on the node.
        case userLimit = "user_limit"
        /// The node holds `limits.connectionsPerNode` connections.
        case nodeFull = "node_full"
        /// The node is starting (not yet linked to the backplane) or shutting down.
        case notServing = "not_serving"
        /// The backplane failed while the token was claimed.
        case backplane
        /// The socket sent no complete request within `limits.handshakeTimeout`.
        case timeout
        /// Anything else (a refusal of a transport outside the node).
        case other
    }

    /// The status to answer with (400, 401, 404, 429, 503).
    public var status: HTTPResponseStatus
    /// A one-line reason, safe to show the client.
    public var reason: String
    /// The cause, for metrics.
    public var cause: Cause

    /// A refusal with `status`, `reason` and `cause`.
    public init(_ status: HTTPResponseStatus, _ reason: String, cause: Cause = .other) {
        self.status = status
        self.reason = reason
        self.cause = cause
    }

    /// The refusal of a token that did not verify.
    init(_ error: TokenError) {
        switch error {
        case .missing: self.init(.badRequest, error.description, cause: .tokenMissing)
        case .expired: self.init(.unauthorized, error.description, cause: .tokenExpired)
        case .replayed: self.init(.unauthorized, error.description, cause: .tokenReplayed)
        default: self.init(.unauthorized, error.description, cause: .tokenInvalid)
        }
    }

    public var description: String { "\(status.code) \(reason)" }
}
