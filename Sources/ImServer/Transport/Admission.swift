import ImCore
import NIOHTTP1

/// The outcome of checking a WebSocket upgrade request before the upgrade.
enum Admission: Sendable {
    /// The token is valid, unused and within limits: upgrade.
    case admitted(VerifiedToken)
    /// Refused with an HTTP status and a one-line reason.
    case refused(HTTPResponseStatus, String)
}
