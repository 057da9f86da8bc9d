import Crypto
import Foundation
import ImCore
import JWTKit
import Testing

/// Correctly signed tokens that carry absurd expiries or algorithms: refused, never a trap.
@Suite("Connect token limits")
struct TokenLimitTests {
    static let secret = ConnectTokenTests.secret

    /// The two verifiers: the HS256 fast path and jwt-kit's key collection.
    private static func verifiers() async throws -> [(String, ConnectTokens)] {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return [("fast path", try await ConnectTokens(secret: secret)), ("jwt-kit", ConnectTokens(keys: keys))]
    }

    private static func base64URL(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// A token with exactly this header and these claims (JSON text), HMAC-SHA256-signed with the secret.
    static func signed(header: String = #"{"alg":"HS256","typ":"JWT"}"#, claims: String) -> String {
        let input = base64URL(Data(header.utf8)) + "." + base64URL(Data(claims.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return input + "." + base64URL(Array(mac))
    }

    private static func error(_ tokens: ConnectTokens, _ token: String, now: Date = Date()) async -> TokenError? {
        do {
            _ = try await tokens.verify(token, now: now)
            return nil
        } catch {
            return error
        }
    }

    @Test(
        "an absurd or non-numeric exp is refused, never a trap",
        arguments: [
            "9.3e18", "1e300", "-1e300", "1.7976931348623157e308", "1e400", #""NaN""#, #""Infinity""#,
            #""1e300""#, "-1", "253402300800",
        ])
    func absurdExpiry(exp: String) async throws {
        let token = Self.signed(claims: #"{"sub":"alice","exp":\#(exp),"jti":"j1"}"#)
        for (name, tokens) in try await Self.verifiers() {
            let error = await Self.error(tokens, token)
            switch error {
            case .malformed?, .expired?, .lifetimeTooLong?: break
            default: Issue.record("\(name), exp \(exp): \(String(describing: error))")
            }
        }
    }

    @Test("an exp further away than the maximum lifetime is refused with the reason; within it is accepted")
    func maximumLifetime() async throws {
        let now = ConnectTokenTests.epoch
        let base = now.timeIntervalSince1970
        let far = Self.signed(claims: #"{"sub":"alice","exp":\#(Int(base) + 3600),"jti":"j2"}"#)
        let near = Self.signed(claims: #"{"sub":"alice","exp":\#(Int(base) + 600),"jti":"j3"}"#)
        for (name, tokens) in try await Self.verifiers() {
            #expect(await Self.error(tokens, far, now: now) == .lifetimeTooLong(maximum: .seconds(600)), "\(name)")
            #expect(try await tokens.verify(near, now: now).expires == now.addingTimeInterval(600), "\(name)")
            var strict = tokens
            strict.maximumLifetime = .seconds(60)
            #expect(await Self.error(strict, near, now: now) == .lifetimeTooLong(maximum: .seconds(60)), "\(name)")
        }
        #expect(TokenError.lifetimeTooLong(maximum: .seconds(600)).description.contains("600"))
    }

    @Test("minting a token that lives longer than the maximum lifetime fails")
    func mintTooLong() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        await #expect(throws: TokenError.lifetimeTooLong(maximum: .seconds(600))) {
            _ = try await tokens.mint(for: "alice", lifetime: .seconds(3600))
        }
    }

    @Test(
        "a header alg other than the key's, or none, is refused",
        arguments: [
            #"{"alg":"HS384","typ":"JWT"}"#, #"{"alg":"HS512"}"#, #"{"alg":"RS256","typ":"JWT"}"#,
            #"{"alg":"none","typ":"JWT"}"#, #"{"alg":"NONE"}"#, #"{"typ":"JWT"}"#, #"{"alg":1}"#,
        ])
    func wrongAlgorithm(header: String) async throws {
        let exp = Int(Date().timeIntervalSince1970) + 60
        let token = Self.signed(header: header, claims: #"{"sub":"alice","exp":\#(exp),"jti":"j4"}"#)
        for (name, tokens) in try await Self.verifiers() {
            let error = await Self.error(tokens, token)
            switch error {
            case .algorithmNotAccepted?, .malformed?: break
            default: Issue.record("\(name), header \(header): \(String(describing: error))")
            }
        }
        let good = Self.signed(
            header: #"{"typ":"JWT","alg":"HS256","x":1}"#,
            claims: #"{"sub":"alice","exp":\#(exp),"jti":"j5"}"#)
        for (name, tokens) in try await Self.verifiers() {
            #expect(try await tokens.verify(good).client == "alice", "\(name)")
        }
    }

    @Test("a memory presence takes any token ttl, however large, without trapping")
    func claimAnyTTL() async throws {
        let presence = MemoryPresence()
        for (index, ttl) in [Duration.seconds(Int64.max), .seconds(-5), .zero, .milliseconds(Int64.max)].enumerated() {
            #expect(try await presence.claimToken(id: "t\(index)", ttl: ttl))
        }
        #expect(try await presence.claimToken(id: "t0", ttl: .seconds(1)) == false)
        _ = try await presence.renewLease(of: "n1", ttl: .seconds(Int64.max))
        #expect(Duration.seconds(Int64.max).clamped(to: Duration.claimTTLRange) == .seconds(86_400))
    }
}
