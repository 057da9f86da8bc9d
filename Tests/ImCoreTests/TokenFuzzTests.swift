import Crypto
import Foundation
import ImCore
import ImTesting
import Testing

/// Random JSON text for claim sets: mostly valid, with the shapes that stress a reader
/// (escapes, lone surrogates, huge and tiny numbers, duplicates, nesting), sometimes broken.
private enum RandomJSON {
    static let keys = ["sub", "exp", "jti", "meta", "iat", "nbf", "aud", "x", "", "s\\u0075b", "sub "]

    static func string(using random: inout SeededGenerator) -> String {
        let pieces = [
            "a", "alice", "é", "日本", "😀", "\\n", "\\\"", "\\\\", "\\/", "\\u0000", "\\u00e9", "\\ud83d\\ude00",
            "\\ud800", "\\udc00", "\\uZZZZ", "\\x", " ", "\u{7F}", String(repeating: "x", count: 300),
        ]
        var text = "\""
        for _ in 0..<Int.random(in: 0...4, using: &random) { text += pieces.randomElement(using: &random)! }
        return text + "\""
    }

    static func number(using random: inout SeededGenerator) -> String {
        [
            "0", "-0", "1", "1.5", "1e3", "1E+400", "-1e400", "1e-400", "4000000000", "-4000000000", "9007199254740993",
            "01", "1.", ".5", "-", "1e", "NaN", "Infinity", "0x10",
            String(Int.random(in: -1_000_000...4_000_000_000, using: &random)),
            String(Double.random(in: 0...5e9, using: &random)),
        ].randomElement(using: &random)!
    }

    static func value(depth: Int = 0, using random: inout SeededGenerator) -> String {
        switch Int.random(in: 0..<(depth > 3 ? 5 : 8), using: &random) {
        case 0, 1: return string(using: &random)
        case 2: return number(using: &random)
        case 3: return ["true", "false", "null", "nul", "tru"].randomElement(using: &random)!
        case 4: return string(using: &random)
        case 5:
            let items = (0..<Int.random(in: 0...3, using: &random)).map { _ in value(depth: depth + 1, using: &random) }
            return "[" + items.joined(separator: ",") + "]"
        case 6:
            return object(depth: depth + 1, using: &random)
        default:
            let depth = Int.random(in: 1...2000, using: &random)
            return String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        }
    }

    static func object(depth: Int = 0, using random: inout SeededGenerator) -> String {
        var members: [String] = []
        for _ in 0..<Int.random(in: 0...6, using: &random) {
            let key =
                Bool.random(using: &random) ? "\"" + keys.randomElement(using: &random)! + "\"" : string(using: &random)
            members.append(key + ":" + value(depth: depth, using: &random))
        }
        return "{" + members.joined(separator: ",") + "}"
    }

    /// A claim set that has the right keys with plausible or hostile values.
    static func claims(duplicates: Bool = true, using random: inout SeededGenerator) -> String {
        var members: [String] = []
        let valid = Date().timeIntervalSince1970 + 60
        for key in ["sub", "exp", "jti", "meta"].shuffled(using: &random)
        where Int.random(in: 0..<8, using: &random) != 0 {
            let value: String =
                switch (key, Int.random(in: 0..<3, using: &random)) {
                case ("sub", 0), ("jti", 0), ("meta", 0): string(using: &random)
                case ("exp", 0): String(Int(valid))
                case ("exp", 1): String(valid)
                default: value(using: &random)
                }
            members.append("\"\(key)\":\(value)")
        }
        if duplicates, Bool.random(using: &random), let duplicate = members.randomElement(using: &random) {
            members.append(duplicate)
        }
        var text = "{" + members.joined(separator: ",") + "}"
        if Int.random(in: 0..<6, using: &random) == 0 {
            text = String(decoding: Mutator.mutate(Array(text.utf8), using: &random), as: UTF8.self)
        }
        return text
    }
}

private func base64URL<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
    Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

@Suite("Fuzzing the connect-token reader")
struct TokenFuzzTests {
    static let secret = "fuzz-secret-0123456789abcdef0123456789abcdef"

    /// A token over `header` and `claims` (JSON text), signed with HS256 and `secret` like a real one.
    static func signed(header: String, claims: String, secret: String = secret) -> String {
        let signingInput = base64URL(Array(header.utf8)) + "." + base64URL(Array(claims.utf8))
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array(signingInput.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return signingInput + "." + base64URL(Array(mac))
    }

    /// The property: verify returns a ``VerifiedToken`` that satisfies the documented claim
    /// rules, or a ``TokenError`` that refuses the token (not one of minting's; never traps).
    static func check(_ token: String, tokens: ConnectTokens, index: Int) async {
        do {
            let verified = try await tokens.verify(token)
            #expect((1...256).contains(verified.client.rawValue.utf8.count), "case \(index): sub \(verified.client)")
            #expect(!verified.id.isEmpty, "case \(index): empty jti accepted")
            #expect(verified.expires > Date(), "case \(index): expired token accepted")
        } catch {
            switch error {
            case .signingFailed, .weakSecret, .replayed:
                Issue.record("case \(index): verify threw \(error) (not a refusal of the token) for \(token)")
            default: break  // a typed refusal: malformed, bad signature, expired, algorithm, lifetime…
            }
        }
    }

    @Test("correctly signed tokens with random claim JSON: a valid token or a typed error, never a trap")
    func signedRandomClaims() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        let headers = [
            #"{"typ":"JWT","alg":"HS256"}"#, #"{"alg":"HS256","typ":"JWT"}"#, #"{"alg":"HS256"}"#,
            #"{"alg":"HS256","kid":"k"}"#, #"{"alg":"none"}"#, #"{"alg":"RS256"}"#, #"{"alg":"HS256","alg":"none"}"#,
            "{}", "[]", "", "{\"alg\":\"HS256\"", #"{"alg":"hs256"}"#,
        ]
        var accepted = 0
        let count = await FuzzBudget(seed: 0x70CE_0001, iterations: 3000).run { index, random in
            let header =
                Int.random(in: 0..<4, using: &random) == 0
                ? RandomJSON.object(using: &random) : headers.randomElement(using: &random)!
            let token = Self.signed(header: header, claims: RandomJSON.claims(using: &random))
            if (try? await tokens.verify(token)) != nil { accepted += 1 }
            await Self.check(token, tokens: tokens, index: index)
        }
        #expect(
            accepted > 0 && accepted < count, "the generator reaches both outcomes (\(accepted) of \(count) accepted)")
    }

    @Test("mutated valid tokens: a valid token or a typed error, never a trap")
    func mutatedTokens() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        var originals: [String] = []
        for index in 0..<8 {
            originals.append(
                try await tokens.mint(
                    for: ClientID(rawValue: "user-\(index)"), meta: index.isMultiple(of: 2) ? "m" : nil))
        }
        originals.append(
            Self.signed(
                header: #"{"alg":"HS256","typ":"JWT"}"#,
                claims: #"{"sub":"bob","exp":4000000000,"jti":"j","meta":null}"#))
        await FuzzBudget(seed: 0x70CE_0002, iterations: 3000).run { index, random in
            let original = Array(originals.randomElement(using: &random)!.utf8)
            var bytes = Mutator.mutate(original, maxMutations: 3, using: &random)
            if Int.random(in: 0..<10, using: &random) == 0 {
                bytes = bytes.map { $0 == UInt8(ascii: ".") ? UInt8(ascii: "A") : $0 }
            }
            await Self.check(String(decoding: bytes, as: UTF8.self), tokens: tokens, index: index)
        }
    }

    @Test("random bytes and dot patterns: a typed error, never a trap")
    func randomTokens() async throws {
        let tokens = try await ConnectTokens(secret: Self.secret)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ %".utf8)
        await FuzzBudget(seed: 0x70CE_0003, iterations: 2000).run { index, random in
            let length = Int.random(in: 0...200, using: &random)
            var bytes: [UInt8] = []
            for _ in 0..<length {
                let byte: UInt8 =
                    Bool.random(using: &random)
                    ? alphabet.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
                bytes.append(byte)
            }
            let token = String(decoding: bytes, as: UTF8.self)
            do {
                _ = try await tokens.verify(token)
                Issue.record("case \(index): random bytes accepted as a token: \(token)")
            } catch let error as TokenError {
                let typed: Bool
                switch error {
                case .missing, .badSignature, .malformed: typed = true
                default: typed = false
                }
                #expect(typed, "case \(index): \(error)")
            } catch {
                Issue.record("case \(index): untyped error \(error)")
            }
        }
    }
}

extension TokenFuzzTests {
    static func outcome(_ token: String, _ tokens: ConnectTokens) async -> Result<VerifiedToken, TokenError> {
        do { return .success(try await tokens.verify(token)) } catch { return .failure(error) }
    }

    @Test(
        "differential: the in-place HS256 reader and jwt-kit agree on random signed claim sets (without duplicate members, which it refuses)"
    )
    func agreesWithJWTKit() async throws {
        let fast = try await ConnectTokens(secret: Self.secret)
        let reference = ConnectTokens(keys: fast.keys)
        var disagreements: [String] = []
        var count = 0
        await FuzzBudget(seed: 0x70CE_0004, iterations: 1500).run { index, random in
            let header = Bool.random(using: &random) ? #"{"typ":"JWT","alg":"HS256"}"# : #"{"alg":"HS256","typ":"JWT"}"#
            // No duplicate members: the in-place reader refuses them, jwt-kit (JSONDecoder) keeps
            // one and does not even check the other's escapes.
            let claims = RandomJSON.claims(duplicates: false, using: &random)
            let token = Self.signed(header: header, claims: claims)
            let a = await Self.outcome(token, fast)
            let b = await Self.outcome(token, reference)
            count += 1
            switch (a, b) {
            case (.success(let x), .success(let y)) where x == y: break
            case (.failure, .failure): break
            default:
                if disagreements.count < 5 {
                    disagreements.append("case \(index): \(claims) → fast \(a), jwt-kit \(b)")
                } else {
                    disagreements.append("")
                }
            }
        }
        #expect(
            disagreements.isEmpty,
            "\(disagreements.count) of \(count) disagree: \(disagreements.prefix(5).joined(separator: "\n"))")
    }
}
