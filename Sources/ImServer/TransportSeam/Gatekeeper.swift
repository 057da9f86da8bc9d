import Foundation
import ImCore
public import NIOCore
import NIOHTTP1
import Synchronization

/// Decides whether a request may become a connection: token (signature, expiry, single use)
/// and the node's limits, all before the transport accepts it. One per node
/// (``NodeCore/gatekeeper``), shared by its transports, so every transport is held to the
/// same limits.
///
/// A handshake goes ``precheck(token:from:)`` (no I/O) → ``admit(token:)`` → either
/// ``NodeCore/open(_:on:output:)`` or ``release(_:)``. Cheap checks come first and none is
/// charged for what a forged request could spend: the per-source rate is charged before
/// anything else (so one source flooding the node is held to its own budget), the node-wide
/// handshake rate only for tokens whose signature holds, and places (``ConnectionSlots``) are
/// reserved before any await so simultaneous handshakes cannot overshoot a limit.
public final class Gatekeeper: Sendable {
    private let limits: Limits
    private let tokens: ConnectTokens
    private let presence: any Presence
    let slots: ConnectionSlots
    private let handshakes: Mutex<TokenBucket>
    private let sources: SourceRateLimiter
    private let linked = Atomic<Bool>(false)
    /// Tokens admitted here, remembered until they expire (at most what the node can admit in
    /// a token's default lifetime, ``ConnectTokens/defaultMaximumLifetime`` ×
    /// ``Limits/handshakesPerSecond``, capped at 200,000).
    let claims: RecentClaims

    init(limits: Limits, tokens: ConnectTokens, presence: any Presence) {
        self.limits = limits
        self.tokens = tokens
        self.presence = presence
        self.slots = ConnectionSlots(perNode: limits.connectionsPerNode, perUser: limits.connectionsPerUser)
        let lifetime = Int(ConnectTokens.defaultMaximumLifetime.components.seconds)
        let budget = lifetime.multipliedReportingOverflow(by: limits.handshakesPerSecond)
        self.claims = RecentClaims(capacity: budget.overflow ? 200_000 : min(budget.partialValue, 200_000))
        self.handshakes = Mutex(
            TokenBucket(
                rate: limits.handshakesPerSecond,
                burst: max(limits.handshakesPerSecond / 10, 1)))
        self.sources = SourceRateLimiter(
            rate: limits.handshakesPerSource,
            burst: max(limits.handshakesPerSource / 10, 10))
    }

    /// Whether the node has taken its lease and subscribed to its own subject: until then a
    /// connection could not be reached, so every handshake is refused with 503.
    var isOpen: Bool { linked.load(ordering: .acquiring) }

    /// Lets handshakes through from now on (see ``isOpen``).
    func open() { linked.store(true, ordering: .releasing) }

    /// Checks what needs no I/O: a token is there, the node is linked, the source's handshake
    /// rate, a place on the node. Returns the token to pass to ``admit(token:)``; from then on
    /// the handshake holds a place on the node (``ConnectionSlots/reserveNode()``), which
    /// ``NodeCore/open(_:on:output:)`` keeps and ``release(_:)`` gives back.
    public func precheck(token: String?, from source: SocketAddress?) throws(HandshakeRefusal) -> String {
        guard let token, !token.isEmpty else {
            throw HandshakeRefusal(TokenError.missing)
        }
        guard isOpen else {
            throw HandshakeRefusal(.serviceUnavailable, "node is starting, retry shortly", cause: .notServing)
        }
        guard sources.take(from: SourceRateLimiter.Source(source)) else {
            throw HandshakeRefusal(
                .tooManyRequests, "too many handshakes from this address, retry shortly", cause: .sourceRate)
        }
        guard slots.reserveNode() else {
            throw HandshakeRefusal(
                .serviceUnavailable, "node is full (\(limits.connectionsPerNode) connections)", cause: .nodeFull)
        }
        return token
    }

    /// Verifies `token`, charges the node-wide handshake rate, reserves one of the user's
    /// places, then claims the token (so a refused handshake does not use the token up). An
    /// admitted handshake holds the user's place; a refused one holds none (only the node's,
    /// until ``release(_:)``).
    public func admit(token: String) async -> Admission {
        let verified: VerifiedToken
        do {
            verified = try await tokens.verify(token)
        } catch {
            return .refused(HandshakeRefusal(error))
        }
        guard handshakes.withLock({ $0.take() }) else {
            return .refused(HandshakeRefusal(.tooManyRequests, "too many handshakes, retry shortly", cause: .nodeRate))
        }
        guard slots.reserve(verified.client) else {
            let limit = limits.connectionsPerUser
            return .refused(
                HandshakeRefusal(
                    .tooManyRequests, "user has \(limit) connections on this node already", cause: .userLimit))
        }
        let ttl = Duration.seconds(max(verified.expires.timeIntervalSinceNow, 0) + 5)
        // This node's own memory first: it holds even when the backend lost its claims.
        guard claims.claim(verified.id, until: ContinuousClock.now.advanced(by: ttl)) else {
            slots.release(verified.client)
            return .refused(HandshakeRefusal(TokenError.replayed))
        }
        do {
            guard try await presence.claimToken(id: verified.id, ttl: ttl) else {
                slots.release(verified.client)
                return .refused(HandshakeRefusal(TokenError.replayed))
            }
        } catch {
            claims.forget(verified.id)
            slots.release(verified.client)
            return .refused(
                HandshakeRefusal(.serviceUnavailable, "backplane unavailable, retry shortly", cause: .backplane))
        }
        return .admitted(verified)
    }

    /// Gives back the places a handshake that will not become a connection holds: the node's
    /// (taken by ``precheck(token:from:)``) and, if it was admitted, the user's. Call it once
    /// for every handshake that passed the precheck and was not opened.
    public func release(_ verdict: Admission?) {
        if case .admitted(let token)? = verdict {
            slots.releaseConnection(of: token.client)
        } else {
            slots.releaseNode()
        }
    }
}
