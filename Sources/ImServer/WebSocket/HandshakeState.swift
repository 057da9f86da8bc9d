import ImCore
import NIOCore
import NIOHTTP1

/// What one connection's handshake decided, kept on its event loop until the pipeline needs it.
final class HandshakeState {
    var token: VerifiedToken?
    /// The answer to a refused upgrade, for ``PublicHTTPHandler``.
    var refusal: PublicResponse?
    /// Closes the socket if it has not upgraded within ``Limits/handshakeTimeout``.
    var deadline: Scheduled<Void>?
}
