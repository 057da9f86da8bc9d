import Foundation
import ImCore
import JWTKit
import Testing

@Suite("Connect tokens")
struct ConnectTokenTests {
    static let secret = "0123456789abcdef0123456789abcdef-test-secret"
    static let otherSecret = "fedcba9876543210fedcba9876543210-other-secret"
    /// A whole second, so JWT's second precision does not blur the expiry boundary.
    static let epoch = Date(timeIntervalSince1970: 1_900_000_000)

    private static func tokenError(_ body: () async throws -> Void) async -> TokenError? {
        do {
            try await body()
            return nil
        } catch let error as TokenError {
            return error
        } catch {
            Issue.record("unexpected error type \(type(of: error)): \(error)")
            return nil
        }
    }

    private static func isMalformed(_ error: TokenError?) -> Bool {
        if case .malformed? = error { return true }
        return false
    }

    private static func base64URL(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    private static func base64URLDecode(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }

    @Test("a minted token verifies to its client, meta, id and expiry")
    func roundTrip() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        let meta = #"{"name":"Zoë","plan":"pro"}"#
        let token = try await tokens.mint(for: "alice@example.com", meta: meta, lifetime: .seconds(60), now: Self.epoch)
        #expect(token.split(separator: ".", omittingEmptySubsequences: false).count == 3)

        let verified = try await tokens.verify(token, now: Self.epoch)
        #expect(verified.client == "alice@example.com")
        #expect(verified.meta == meta)
        #expect(!verified.id.isEmpty)
        #expect(verified.expires == Self.epoch.addingTimeInterval(60))

        // Verification does not consume the token: replay protection lives in Presence.
        #expect(try await tokens.verify(token, now: Self.epoch) == verified)
    }

    @Test(
        "meta is optional and unusual client ids survive",
        arguments: ["-42", "用户", "a b", String(repeating: "x", count: 256)])
    func withoutMeta(_ client: String) async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        let token = try await tokens.mint(for: ClientID(rawValue: client), now: Self.epoch)
        let verified = try await tokens.verify(token, now: Self.epoch)
        #expect(verified.client.rawValue == client)
        #expect(verified.meta == nil)
    }

    @Test("another instance with the same secret verifies the token")
    func sameSecretElsewhere() async throws {
        let minter = try await ConnectTokens(secret: Self.secret)
        let verifier = try await ConnectTokens(secret: Self.secret)
        let token = try await minter.mint(for: "bob", meta: "m", now: Self.epoch)
        let verified = try await verifier.verify(token, now: Self.epoch)
        #expect(verified.client == "bob")
        #expect(verified.meta == "m")
    }

    @Test("a token minted with another secret has a bad signature")
    func otherSecret() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        let foreign = try await ConnectTokens(secret: Self.otherSecret)
        let token = try await foreign.mint(for: "alice")
        let error = await Self.tokenError { _ = try await tokens.verify(token) }
        #expect(error == .badSignature)
    }

    @Test("a payload edited after signing is refused")
    func tamperedPayload() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        let token = try await tokens.mint(for: "alice", meta: "user")
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let payload = try #require(Self.base64URLDecode(parts[1]))
        var claims = try #require(try JSONSerialization.jsonObject(with: payload) as? [String: Any])
        #expect(claims["sub"] as? String == "alice")

        // Impersonation: same structure, other subject, original signature.
        claims["sub"] = "mallory"
        claims["meta"] = "admin"
        let forged = try JSONSerialization.data(withJSONObject: claims)
        let impersonation = [parts[0], Self.base64URL(forged), parts[2]].joined(separator: ".")
        let error = await Self.tokenError { _ = try await tokens.verify(impersonation) }
        #expect(error == .badSignature)

        // Lifetime extension.
        claims["sub"] = "alice"
        claims["exp"] = 4_000_000_000
        let extended = [parts[0], Self.base64URL(try JSONSerialization.data(withJSONObject: claims)), parts[2]]
            .joined(separator: ".")
        let extendedError = await Self.tokenError { _ = try await tokens.verify(extended) }
        #expect(extendedError == .badSignature)

        // A single changed character anywhere in the payload.
        for index in [0, parts[1].count / 2, parts[1].count - 2] {
            var chars = Array(parts[1])
            chars[index] = chars[index] == "A" ? "B" : "A"
            let edited = [parts[0], String(chars), parts[2]].joined(separator: ".")
            let editError = await Self.tokenError { _ = try await tokens.verify(edited) }
            #expect(
                editError == .badSignature || Self.isMalformed(editError),
                "edit at \(index): \(String(describing: editError))")
        }
    }

    @Test("an edited signature is refused")
    func tamperedSignature() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        let token = try await tokens.mint(for: "alice")
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var signature = Array(parts[2])
        signature[0] = signature[0] == "A" ? "B" : "A"
        let edited = [parts[0], parts[1], String(signature)].joined(separator: ".")
        let error = await Self.tokenError { _ = try await tokens.verify(edited) }
        #expect(error == .badSignature)

        let unsigned = [parts[0], parts[1], ""].joined(separator: ".")
        let unsignedError = await Self.tokenError { _ = try await tokens.verify(unsigned) }
        #expect(unsignedError == .badSignature || Self.isMalformed(unsignedError))
    }

    @Test("a token with alg none is not accepted")
    func algNone() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        let header = Self.base64URL(Data(#"{"alg":"none","typ":"JWT"}"#.utf8))
        let payload = Self.base64URL(Data(#"{"sub":"alice","exp":4000000000,"jti":"x"}"#.utf8))
        for token in ["\(header).\(payload).", "\(header).\(payload)"] {
            let error = await Self.tokenError { _ = try await tokens.verify(token) }
            #expect(error == .badSignature || Self.isMalformed(error), "\(token): \(String(describing: error))")
        }
    }

    @Test("a token past its expiry is refused as expired")
    func expired() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)

        // Minted long ago with a short lifetime, verified now.
        let old = try await tokens.mint(for: "alice", lifetime: .seconds(30), now: Date().addingTimeInterval(-3600))
        #expect(await Self.tokenError { _ = try await tokens.verify(old) } == .expired)

        // Minted now, verified in the future.
        let fresh = try await tokens.mint(for: "alice", lifetime: .seconds(30), now: Self.epoch)
        #expect(
            await Self.tokenError { _ = try await tokens.verify(fresh, now: Self.epoch.addingTimeInterval(3600)) }
                == .expired)

        // The boundary: valid until just before exp, refused from exp on.
        #expect(try await tokens.verify(fresh, now: Self.epoch.addingTimeInterval(29)).client == "alice")
        #expect(
            await Self.tokenError { _ = try await tokens.verify(fresh, now: Self.epoch.addingTimeInterval(30)) }
                == .expired)
        #expect(
            await Self.tokenError { _ = try await tokens.verify(fresh, now: Self.epoch.addingTimeInterval(31)) }
                == .expired)
    }

    @Test("the lifetime sets the expiry")
    func lifetime() async throws {
        var tokens = try await ConnectTokens(secret: Self.secret)
        tokens.maximumLifetime = .seconds(3600)
        let token = try await tokens.mint(for: "alice", lifetime: .seconds(3600), now: Self.epoch)
        let verified = try await tokens.verify(token, now: Self.epoch.addingTimeInterval(3599))
        #expect(verified.expires == Self.epoch.addingTimeInterval(3600))
        #expect(
            await Self.tokenError { _ = try await tokens.verify(token, now: Self.epoch.addingTimeInterval(3600)) }
                == .expired)

        let zero = try await tokens.mint(for: "alice", lifetime: .zero, now: Self.epoch)
        #expect(await Self.tokenError { _ = try await tokens.verify(zero, now: Self.epoch) } == .expired)
    }

    @Test("an empty token is missing")
    func missing() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        #expect(await Self.tokenError { _ = try await tokens.verify("") } == .missing)
    }

    @Test(
        "text that is not a JWT is malformed",
        arguments: [
            "garbage", "a.b", "a.b.c", "...", "a.b.c.d", " ", "eyJhbGciOiJIUzI1NiJ9", "😀.😀.😀",
        ])
    func garbage(_ text: String) async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        let error = await Self.tokenError { _ = try await tokens.verify(text) }
        if text.split(separator: ".", omittingEmptySubsequences: false).count == 3 {
            // Three parts: the signature check may be what fails first.
            #expect(Self.isMalformed(error) || error == .badSignature, "\(text): \(String(describing: error))")
        } else {
            #expect(Self.isMalformed(error), "\(text): \(String(describing: error))")
        }
    }

    @Test("a structurally valid JWT with garbage parts is malformed, not a crash")
    func garbageParts() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        let error = await Self.tokenError { _ = try await tokens.verify("!!!.@@@.###") }
        #expect(Self.isMalformed(error) || error == .badSignature)
    }

    @Test("a secret shorter than 32 bytes is refused; length is counted in UTF-8 bytes")
    func weakSecret() async throws {
        for secret in ["", "short", String(repeating: "x", count: 31), String(repeating: "é", count: 15) + "a"] {
            let error = await Self.tokenError { _ = try await ConnectTokens(secret: secret) }
            #expect(error == .weakSecret, "secret of \(secret.utf8.count) bytes")
        }
        // 32 bytes, whether 32 ASCII characters or 16 two-byte characters, is enough.
        for secret in [String(repeating: "x", count: 32), String(repeating: "é", count: 16)] {
            let tokens = try await ConnectTokens(secret: secret)
            let token = try await tokens.mint(for: "alice", now: Self.epoch)
            #expect(try await tokens.verify(token, now: Self.epoch).client == "alice")
        }
        #expect(TokenError.weakSecret.description.contains("\(ConnectTokens.minimumSecretLength)"))
    }

    @Test(
        "a token minted in place is one jwt-kit reads: its header, and the claims it verifies to",
        arguments: [nil, "web", #"{"name":"Zoë","q":"\"x\\y\""}"#, "tab\tnew\nline\u{1}end", "用户 ✓ 😀"])
    func mintedAsJWTKitWouldMint(_ meta: String?) async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        let client = ClientID(rawValue: #"ali"ce\ 用户"#)
        let now = Date(timeIntervalSince1970: 1_900_000_000.25)
        let token = try await tokens.mint(for: client, meta: meta, lifetime: .seconds(45), now: now)

        // The key collection's own path (JSONDecoder, not the in-place reader) reads it.
        let claims = try await tokens.keys.verify(token, as: ConnectClaims.self)
        #expect(claims.sub.value == client.rawValue)
        #expect(claims.meta == meta)
        #expect(claims.exp.value == now.addingTimeInterval(45))
        #expect(claims.jti.value.count == 32)

        // The header says what jwt-kit's says for the same key (it writes the members in
        // either order).
        func header(_ token: String) throws -> [String: String]? {
            let part = try #require(Self.base64URLDecode(String(token.split(separator: ".")[0])))
            return try JSONSerialization.jsonObject(with: part) as? [String: String]
        }
        #expect(try header(token) == ["alg": "HS256", "typ": "JWT"])
        #expect(try header(token) == header(try await tokens.keys.sign(claims)))

        let verified = try await tokens.verify(token, now: now)
        #expect(verified.client == client && verified.meta == meta)
        #expect(verified.id == claims.jti.value && verified.expires == claims.exp.value)
        // No `meta` member at all when there is none, as jwt-kit writes it.
        let payload = try #require(Self.base64URLDecode(String(token.split(separator: ".")[1])))
        let object = try #require(try JSONSerialization.jsonObject(with: payload) as? [String: Any])
        #expect(Set(object.keys) == (meta == nil ? ["sub", "exp", "jti"] : ["sub", "exp", "jti", "meta"]))
    }

    @Test("every minted token has its own jti")
    func distinctIDs() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        var ids: Set<String> = []
        var texts: Set<String> = []
        for _ in 0..<200 {
            let token = try await tokens.mint(for: "alice", meta: "same", now: Self.epoch)
            texts.insert(token)
            ids.insert(try await tokens.verify(token, now: Self.epoch).id)
        }
        #expect(ids.count == 200)
        #expect(texts.count == 200)
    }

    @Test("a validly signed token with an empty sub is malformed")
    func emptySubject() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        let claims = ConnectClaims(
            client: ClientID(rawValue: ""), expires: Self.epoch.addingTimeInterval(60),
            id: "jti-1", meta: nil)
        let token = try await tokens.keys.sign(claims)
        let error = await Self.tokenError { _ = try await tokens.verify(token, now: Self.epoch) }
        #expect(Self.isMalformed(error), "\(String(describing: error))")

        // The same claims with a subject are fine, so it is the subject that was refused.
        let good = ConnectClaims(client: "alice", expires: Self.epoch.addingTimeInterval(60), id: "jti-1", meta: nil)
        #expect(try await tokens.verify(try await tokens.keys.sign(good), now: Self.epoch).id == "jti-1")
    }

    @Test("a validly signed token with a sub longer than a client id may be is malformed")
    func overlongSubject() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        let sub = String(repeating: "x", count: ClientID.maximumLength + 1)
        let claims = ConnectClaims(
            client: ClientID(rawValue: sub), expires: Self.epoch.addingTimeInterval(60),
            id: "jti-2", meta: nil)
        let token = try await tokens.keys.sign(claims)
        #expect(Self.isMalformed(await Self.tokenError { _ = try await tokens.verify(token, now: Self.epoch) }))
    }

    @Test("a validly signed token with an empty jti is malformed")
    func emptyID() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        let claims = ConnectClaims(client: "alice", expires: Self.epoch.addingTimeInterval(60), id: "", meta: nil)
        let token = try await tokens.keys.sign(claims)
        #expect(Self.isMalformed(await Self.tokenError { _ = try await tokens.verify(token, now: Self.epoch) }))
    }

    @Test("a validly signed token missing a required claim is malformed")
    func missingClaims() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        struct OnlySub: JWTPayload {
            var sub: SubjectClaim
            func verify(using algorithm: some JWTAlgorithm) async throws {}
        }
        let token = try await tokens.keys.sign(OnlySub(sub: SubjectClaim(value: "alice")))
        #expect(Self.isMalformed(await Self.tokenError { _ = try await tokens.verify(token, now: Self.epoch) }))
    }

    @Test("errors describe themselves distinctly")
    func descriptions() {
        let all: [TokenError] = [
            .missing, .malformed("detail-x"), .badSignature, .expired, .replayed,
            .signingFailed("why-y"), .weakSecret,
        ]
        #expect(Set(all.map(\.description)).count == all.count)
        #expect(TokenError.malformed("detail-x").description.contains("detail-x"))
        #expect(TokenError.signingFailed("why-y").description.contains("why-y"))
    }
}
