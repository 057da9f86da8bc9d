import Foundation
import ImCore
import NIOCore
import NIOHTTP1
import Synchronization

/// Decides whether an upgrade request may become a connection: path, token (signature, expiry,
/// single use), and the node's limits, all before the upgrade.
///
/// Cheap checks come first and none is charged for what a forged request could spend: the
/// per-source rate is charged before anything else (so one source flooding the node is held
/// to its own budget), the node-wide handshake rate only for tokens whose signature holds,
/// and places (``ConnectionSlots``) are reserved before any await so simultaneous handshakes
/// cannot overshoot a limit.
final class Gatekeeper: Sendable {
    let core: NodeCore
    private let handshakes: Mutex<TokenBucket>
    private let sources: SourceRateLimiter

    init(core: NodeCore) {
        self.core = core
        let limits = core.configuration.limits
        self.handshakes = Mutex(
            TokenBucket(
                rate: limits.handshakesPerSecond,
                burst: max(limits.handshakesPerSecond / 10, 1)))
        self.sources = SourceRateLimiter(
            rate: limits.handshakesPerSource,
            burst: max(limits.handshakesPerSource / 10, 10))
    }

    /// Checks the request line and limits that need no I/O; `nil` means go on to ``admit(token:)``.
    /// A token returned holds a place on the node (``ConnectionSlots/reserveNode()``): the
    /// caller gives it back unless the connection is upgraded.
    func precheck(uri: String, from source: SocketAddress?) -> (token: String?, refusal: Admission?) {
        let limits = core.configuration.limits
        let target = RequestTarget(uri)
        guard target.path == core.configuration.path else {
            return (nil, .refused(.notFound, "no WebSocket endpoint at this path"))
        }
        guard let token = target.value(of: "token"), !token.isEmpty else {
            return (nil, .refused(.badRequest, TokenError.missing.description))
        }
        guard core.isLinked else {
            return (nil, .refused(.serviceUnavailable, "node is starting, retry shortly"))
        }
        guard sources.take(from: SourceRateLimiter.Source(source)) else {
            return (nil, .refused(.tooManyRequests, "too many handshakes from this address, retry shortly"))
        }
        guard core.slots.reserveNode() else {
            return (nil, .refused(.serviceUnavailable, "node is full (\(limits.connectionsPerNode) connections)"))
        }
        return (token, nil)
    }

    /// Verifies `token`, charges the node-wide handshake rate, reserves one of the user's
    /// places, then claims the token (so a refused handshake does not use the token up). An
    /// admitted handshake holds the user's place; a refused one holds none.
    func admit(token: String) async -> Admission {
        let verified: VerifiedToken
        do {
            verified = try await core.tokens.verify(token)
        } catch {
            return .refused(error == .missing ? .badRequest : .unauthorized, error.description)
        }
        guard handshakes.withLock({ $0.take() }) else {
            return .refused(.tooManyRequests, "too many handshakes, retry shortly")
        }
        guard core.slots.reserve(verified.client) else {
            let limit = core.configuration.limits.connectionsPerUser
            return .refused(.tooManyRequests, "user has \(limit) connections on this node already")
        }
        do {
            let ttl = Duration.seconds(max(verified.expires.timeIntervalSinceNow, 0) + 5)
            guard try await core.backplane.presence.claimToken(id: verified.id, ttl: ttl) else {
                core.slots.release(verified.client)
                return .refused(.unauthorized, TokenError.replayed.description)
            }
        } catch {
            core.slots.release(verified.client)
            return .refused(.serviceUnavailable, "backplane unavailable, retry shortly")
        }
        return .admitted(verified)
    }

    /// Gives back the places a handshake that will not become a connection holds: the node's
    /// (taken by ``precheck(uri:from:)``) and, if it was admitted, the user's.
    func release(_ verdict: Admission?) {
        if case .admitted(let token)? = verdict {
            core.slots.releaseConnection(of: token.client)
        } else {
            core.slots.releaseNode()
        }
    }
}
