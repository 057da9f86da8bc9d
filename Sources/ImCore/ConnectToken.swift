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

    public var description: String {
        switch self {
        case .missing: "missing token"
        case .malformed(let detail): "malformed token: \(detail)"
        case .badSignature: "token signature is invalid"
        case .expired: "token expired"
        case .replayed: "token was already used"
        case .signingFailed(let detail): "could not sign token: \(detail)"
        case .weakSecret: "token secret must be at least \(ConnectTokens.minimumSecretLength) bytes"
        }
    }
}

/// Mints and verifies connect tokens with a set of JWT keys (HS256 by default; any algorithm
/// jwt-kit supports, RS256 and EdDSA included, can be added to the key collection).
public struct ConnectTokens: Sendable {
    /// The keys that sign and verify.
    public let keys: JWTKeyCollection
    /// The HS256 secret, when the tokens were made with ``init(secret:)``: such tokens are
    /// verified in place (no hop to the key collection's actor), once per handshake.
    let secret: SymmetricKey?

    /// The shortest HS256 secret accepted, in bytes (the hash's output size).
    public static let minimumSecretLength = 32

    /// Tokens signed and verified with HS256 and `secret` (at least 32 bytes).
    public init(secret: String) async throws(TokenError) {
        guard secret.utf8.count >= Self.minimumSecretLength else { throw .weakSecret }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.keys = keys
        self.secret = SymmetricKey(data: Array(secret.utf8))
    }

    /// Tokens signed and verified with the keys of `keys`.
    public init(keys: JWTKeyCollection) {
        self.keys = keys
        self.secret = nil
    }

    /// A signed token for `client`, valid for `lifetime`.
    public func mint(for client: ClientID, meta: String? = nil, lifetime: Duration = .seconds(30), now: Date = Date())
        async throws(TokenError) -> String
    {
        let claims = ConnectClaims(client: client, expires: now.addingTimeInterval(lifetime.seconds),
                                   id: randomHex(bytes: 16), meta: meta)
        do {
            return try await keys.sign(claims)
        } catch {
            throw .signingFailed(String(describing: error))
        }
    }

    /// Checks a token's signature, shape and expiry (not single use: see ``Presence/claimToken(id:ttl:)``).
    public func verify(_ token: String, now: Date = Date()) async throws(TokenError) -> VerifiedToken {
        guard !token.isEmpty else { throw .missing }
        let claims: ConnectClaims
        do {
            if let secret, let fast = try Self.verifiedHS256(token, secret: secret) {
                claims = fast
            } else {
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
        guard claims.exp.value > now else { throw .expired }
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

extension Duration {
    /// The duration in seconds, as a `Double`.
    package var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// The duration in whole nanoseconds, saturating.
    package var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : whole &+ attoseconds / 1_000_000_000
    }
}
