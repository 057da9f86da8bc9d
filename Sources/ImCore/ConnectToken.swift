import Crypto
public import Foundation
public import JWTKit

/// The claims of a connect token: a JWT the back-end mints and a client presents once.
public struct ConnectClaims: JWTPayload, Equatable {
    /// The client id (`sub`).
    public var sub: SubjectClaim
    /// When the token stops being accepted (`exp`).
    public var exp: ExpirationClaim
    /// The token's unique id (`jti`), claimed once cluster-wide so a token cannot be replayed.
    public var jti: IDClaim
    /// Free text the back-end attaches (FreeIM's client metadata); handed to online/offline events.
    public var meta: String?

    /// Claims for one connect token.
    public init(client: ClientID, expires: Date, id: String, meta: String?) {
        self.sub = SubjectClaim(value: client.rawValue)
        self.exp = ExpirationClaim(value: expires)
        self.jti = IDClaim(value: id)
        self.meta = meta
    }

    /// Checks nothing: expiry is checked by ``ConnectTokens`` so it can be reported distinctly.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// What a verified connect token says.
public struct VerifiedToken: Sendable, Equatable {
    /// Who connects.
    public var client: ClientID
    /// The token's `jti`.
    public var id: String
    /// The back-end's metadata for the connection.
    public var meta: String?
    /// When the token expires.
    public var expires: Date
}

/// Why a connect token was refused.
public enum TokenError: Error, Equatable, CustomStringConvertible {
    /// No token was given.
    case missing
    /// The text is not a JWT, or its claims are missing or malformed.
    case malformed(String)
    /// The signature does not match any configured key.
    case badSignature
    /// The token's `exp` has passed.
    case expired
    /// The token was used before (its `jti` was already claimed).
    case replayed
    /// Signing failed (a key problem on the minting side).
    case signingFailed(String)
    /// The HS256 secret is shorter than ``ConnectTokens/minimumSecretLength`` bytes.
    case weakSecret
    /// The token's header names an algorithm the verifier is not configured for (`none`,
    /// or one other than its key's).
    case algorithmNotAccepted(String)
    /// The token's `exp` is further away than ``ConnectTokens/maximumLifetime`` allows (with
    /// ``ConnectTokens/clockSkewAllowance``): the minting side is misconfigured or the token forged.
    case lifetimeTooLong(maximum: Duration)

    public var description: String {
        switch self {
        case .missing: "missing token"
        case .malformed(let detail): "malformed token: \(detail)"
        case .badSignature: "token signature is invalid"
        case .expired: "token expired"
        case .replayed: "token was already used"
        case .signingFailed(let detail): "could not sign token: \(detail)"
        case .weakSecret: "token secret must be at least \(ConnectTokens.minimumSecretLength) bytes"
        case .algorithmNotAccepted(let algorithm):
            "token algorithm '\(algorithm.prefix(40))' is not accepted (the header's alg must match the verifying key)"
        case .lifetimeTooLong(let maximum):
            "token expires too far in the future (the maximum token lifetime is \(maximum.seconds) s)"
        }
    }
}

/// Mints and verifies connect tokens with a set of JWT keys (HS256 by default; any algorithm
/// jwt-kit supports, RS256 and EdDSA included, can be added to the key collection).
public struct ConnectTokens: Sendable {
    /// The keys that sign and verify.
    public let keys: JWTKeyCollection
    /// The HS256 secret's MAC with the key already applied, when the tokens were made with
    /// ``init(secret:)``: such tokens are minted and verified in place (no hop to the key
    /// collection's actor, no key setup), once per connect URL and once per handshake.
    let signer: HMAC<SHA256>?
    /// The `jti` of minted tokens: 64 random bits per instance, then a 64-bit counter.
    private let tokenIDs = UniqueIDs(randomBytes: 8, counterDigits: 16)

    /// The longest time a token may be valid: a token whose `exp` is further than this (plus
    /// ``clockSkewAllowance``) from the verifier's clock is refused, and ``mint(for:meta:lifetime:now:)``
    /// refuses a longer lifetime. Default ``defaultMaximumLifetime``.
    public var maximumLifetime: Duration = Self.defaultMaximumLifetime

    /// The shortest HS256 secret accepted, in bytes (the hash's output size).
    public static let minimumSecretLength = 32
    /// The default ``maximumLifetime``: 10 minutes (connect tokens are meant to be used at once).
    public static let defaultMaximumLifetime: Duration = .seconds(600)
    /// How far the minting side's clock may run ahead of the verifier's.
    public static let clockSkewAllowance: Duration = .seconds(60)
    /// The latest `exp` that is read as a time at all (the end of year 9999, in Unix seconds);
    /// anything beyond, negative or not finite is a malformed token.
    static let latestExpiry: TimeInterval = 253_402_300_799

    /// Tokens signed and verified with HS256 and `secret` (at least 32 bytes).
    public init(secret: String) async throws(TokenError) {
        guard secret.utf8.count >= Self.minimumSecretLength else { throw .weakSecret }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.keys = keys
        self.signer = HMAC(key: SymmetricKey(data: Array(secret.utf8)))
    }

    /// Tokens signed and verified with the keys of `keys`.
    public init(keys: JWTKeyCollection) {
        self.keys = keys
        self.signer = nil
    }

    /// A signed token for `client`, valid for `lifetime`.
    public func mint(for client: ClientID, meta: String? = nil, lifetime: Duration = .seconds(30), now: Date = Date())
        async throws(TokenError) -> String
    {
        if let token = try mintedInPlace(for: client, meta: meta, lifetime: lifetime, now: now) { return token }
        let claims = try claims(for: client, meta: meta, lifetime: lifetime, now: now)
        do {
            return try await keys.sign(claims)
        } catch {
            throw .signingFailed(String(describing: error))
        }
    }

    /// A token like ``mint(for:meta:lifetime:now:)``'s, minted on the calling thread: `nil` when
    /// the keys sign only through the key collection (tokens not made with ``init(secret:)``).
    package func mintedInPlace(for client: ClientID, meta: String?, lifetime: Duration, now: Date = Date())
        throws(TokenError) -> String?
    {
        guard let signer else { return nil }
        return Self.mintedHS256(try claims(for: client, meta: meta, lifetime: lifetime, now: now), signer: signer)
    }

    private func claims(for client: ClientID, meta: String?, lifetime: Duration, now: Date) throws(TokenError)
        -> ConnectClaims
    {
        guard lifetime <= maximumLifetime else { throw .lifetimeTooLong(maximum: maximumLifetime) }
        return ConnectClaims(
            client: client, expires: now.addingTimeInterval(lifetime.seconds), id: tokenIDs.next(), meta: meta)
    }

    /// Checks a token's signature, algorithm, shape and expiry (not single use: see
    /// ``Presence/claimToken(id:ttl:)``).
    ///
    /// The header's `alg` must be the algorithm of the key that verifies the token (`none` is
    /// never accepted), and `exp` must be a time no further away than ``maximumLifetime``, so
    /// ``VerifiedToken/expires`` is always within minutes of `now`.
    public func verify(_ token: String, now: Date = Date()) async throws(TokenError) -> VerifiedToken {
        guard !token.isEmpty else { throw .missing }
        let claims: ConnectClaims
        do {
            if let signer, let fast = try Self.verifiedHS256(token, signer: signer) {
                claims = fast
            } else {
                try await checkAlgorithm(of: token)
                claims = try await keys.verify(token, as: ConnectClaims.self)
            }
        } catch let error as TokenError {
            throw error
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw .badSignature
        } catch let error as JWTError {
            throw .malformed(error.reason ?? String(describing: error.errorType))
        } catch {
            throw .malformed(String(describing: error))
        }
        let expiry = claims.exp.value.timeIntervalSince1970
        guard expiry.isFinite, (0...Self.latestExpiry).contains(expiry) else {
            throw .malformed("exp must be a time in seconds since 1970, up to year 9999")
        }
        guard claims.exp.value > now else { throw .expired }
        guard expiry - now.timeIntervalSince1970 <= (maximumLifetime + Self.clockSkewAllowance).seconds else {
            throw .lifetimeTooLong(maximum: maximumLifetime)
        }
        let client: ClientID
        do {
            client = try ClientID(validating: claims.sub.value)
        } catch {
            throw .malformed(error.description)
        }
        guard !claims.jti.value.isEmpty else { throw .malformed("jti must not be empty") }
        return VerifiedToken(client: client, id: claims.jti.value, meta: claims.meta, expires: claims.exp.value)
    }
}

extension ConnectTokens {
    /// Refuses a token whose header's `alg` is `none` or is not the algorithm of the key that
    /// would verify it (jwt-kit verifies with the key's algorithm whatever the header says).
    private func checkAlgorithm(of token: String) async throws(TokenError) {
        let bytes = Array(token.utf8)
        guard let dot = bytes.firstIndex(of: UInt8(ascii: ".")) else {
            throw .malformed("not a JWT (three dot-separated parts)")
        }
        let header = try Self.members(of: bytes[..<dot], name: "header")
        guard case .string(let algorithm)? = header["alg"]?.value else {
            throw .malformed("header alg must be a string")
        }
        let kid: JWKIdentifier?
        switch header["kid"]?.value {
        case nil: kid = nil
        case .string(let text)?: kid = JWKIdentifier(string: text)
        default: throw .malformed("header kid must be a string")
        }
        guard algorithm.lowercased() != "none" else { throw .algorithmNotAccepted(algorithm) }
        let key: any JWTAlgorithm
        do {
            key = try await keys.getKey(for: kid, alg: algorithm)
        } catch {
            throw .algorithmNotAccepted(algorithm)
        }
        guard key.name == algorithm else { throw .algorithmNotAccepted(algorithm) }
    }
}
