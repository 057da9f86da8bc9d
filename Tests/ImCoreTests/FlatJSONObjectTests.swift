@testable import ImJSON
import Crypto
import Foundation
@testable import ImCore
import JWTKit
import Testing

@Suite("Reading a token's header and claims without JSONDecoder")
struct FlatJSONObjectTests {
    private func members(_ text: String) throws -> [String: FlatJSONObject.Value] {
        try FlatJSONObject.members(of: Array(text.utf8))
    }

    private func isMalformed(_ text: String) -> Bool {
        (try? members(text)) == nil
    }

    @Test("strings and numbers are read; other values are passed over")
    func values() throws {
        let read = try members(
            #" { "sub" : "alice", "exp":1900000000.5, "n":-2e3, "t":true, "f":false, "z":null, "#
                + #""o":{"a":[1,{"b":"}"}],"c":{}}, "a":[], "s":"" } "#)
        #expect(read["sub"] == .string("alice"))
        #expect(read["exp"] == .number(1_900_000_000.5))
        #expect(read["n"] == .number(-2000))
        #expect(read["s"] == .string(""))
        #expect(read["z"] == .null)
        for name in ["t", "f", "o", "a"] { #expect(read[name] == .other, "\(name)") }
        #expect(read.count == 9)
        #expect(try members("{}").isEmpty)
    }

    @Test("escapes decode as JSON says, surrogate pairs included")
    func escapes() throws {
        let read = try members(#"{"m":"q\"b\\s\/\b\f\n\r\t\u00e9\u4e2d\ud83d\ude00 end"}"#)
        #expect(read["m"] == .string("q\"b\\s/\u{08}\u{0C}\n\r\té中😀 end"))
        #expect(try members(#"{"raw":"Zoë 用户 😀"}"#)["raw"] == .string("Zoë 用户 😀"))
    }

    @Test(
        "what is not one well-formed object is refused",
        arguments: [
            "", "[]", "\"x\"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1 \"b\":2}", "{a:1}", "{\"a\":1}x",
            "{\"a\":tru}", "{\"a\":nul}", "{\"a\":\"x}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\ud83d\"}",
            "{\"a\":\"\\ude00\"}", "{\"a\":\"tab\there\"}", "{\"a\":[1,}", "{\"a\":{\"b\"}}", "{\"a\":1e}", "{\"a\":-}",
            "{\"a\":1,\"a\":2}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":truex}",
        ])
    func malformed(_ text: String) {
        #expect(isMalformed(text), "\(text)")
    }

    @Test(
        "invalid UTF-8 inside a string is refused, with or without escapes, in a value or a name",
        arguments: [
            [0xC3, 0x28], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xFF], [0xF4, 0x90, 0x80, 0x80],
        ] as [[UInt8]])
    func invalidUTF8(_ invalid: [UInt8]) {
        for (before, after) in [(#"{"a":""#, #""}"#), (#"{"a":"\n"#, #""}"#), (#"{""#, #"":1}"#)] {
            let bytes = Array(before.utf8) + invalid + Array(after.utf8)
            #expect((try? FlatJSONObject.members(of: bytes)) == nil, "\(before) \(invalid) \(after)")
        }
    }

    @Test("valid UTF-8 is read as it is, the replacement character included")
    func validUTF8() throws {
        let text = "Zoë 用户 😀 \u{FFFD} \u{10FFFF}"
        let members = try FlatJSONObject.members(of: Array(#"{"\#(text)":"\#(text)","e":"\n\#(text)"}"#.utf8))
        #expect(members[text] == .string(text))
        #expect(members["e"] == .string("\n" + text))
    }

    @Test("nesting deeper than the limit is refused, not a stack overflow")
    func depth() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(isMalformed(#"{"a":"# + deep + "}"))
        let fine =
            String(repeating: "[", count: JSONValidator.maximumDepth)
            + String(repeating: "]", count: JSONValidator.maximumDepth)
        #expect(!isMalformed(#"{"a":"# + fine + "}"))
    }

    @Test("base64url without padding decodes; the plain alphabet and padding are refused")
    func base64URL() {
        let decode = { (text: String) in ConnectTokens.base64URLDecoded(ArraySlice(text.utf8)) }
        #expect(decode("") == [])
        #expect(decode("YQ") == Array("a".utf8))
        #expect(decode("YWI") == Array("ab".utf8))
        #expect(decode("YWJj") == Array("abc".utf8))
        #expect(decode("__8") == [0xFF, 0xFF])
        #expect(decode("YQ==") == nil)
        #expect(decode("a+b/") == nil)
        #expect(decode("Y") == nil)
        #expect(decode("Y!Q") == nil)
    }

    @Test(
        "the HS256 path reads what jwt-kit reads",
        arguments: [
            nil, "", "plain", #"{"name":"Zoë","plan":"pro"}"#, "line\nbreak\t\"quoted\" \\ / \u{1F600} \u{7F} \u{0}",
        ])
    func sameAsJWTKit(_ meta: String?) async throws {
        let tokens = try await ConnectTokens(secret: ConnectTokenTests.secret)
        let token = try await tokens.mint(for: "用户 a", meta: meta, lifetime: .seconds(90), now: ConnectTokenTests.epoch)
        let signer = try #require(tokens.signer)
        let fast = try #require(try ConnectTokens.verifiedHS256(token, signer: signer))
        let reference = try await tokens.keys.verify(token, as: ConnectClaims.self)
        #expect(fast == reference)
        #expect(fast.meta == meta)
    }

    private static let key = SymmetricKey(data: Array(ConnectTokenTests.secret.utf8))
    private static let signer = HMAC<SHA256>(key: key)

    /// A token signed with ``key`` over exactly these header and claims texts.
    private static func token(
        header: String = #"{"alg":"HS256","typ":"JWT"}"#,
        claims: String = #"{"sub":"a","exp":4000000000,"jti":"j"}"#
    ) -> String {
        let encode = { (bytes: [UInt8]) in
            Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        let signed = encode(Array(header.utf8)) + "." + encode(Array(claims.utf8))
        return signed + "." + encode(Array(HMAC<SHA256>.authenticationCode(for: Array(signed.utf8), using: key)))
    }

    @Test("a header that names another algorithm or a key id is left to the key collection")
    func otherHeaders() throws {
        let key = Self.signer
        #expect(try ConnectTokens.verifiedHS256(Self.token(header: #"{"alg":"HS256"}"#), signer: key)?.jti.value == "j")
        #expect(try ConnectTokens.verifiedHS256(Self.token(header: #"{"alg":"HS512"}"#), signer: key) == nil)
        #expect(try ConnectTokens.verifiedHS256(Self.token(header: #"{"alg":"HS256","kid":"k1"}"#), signer: key) == nil)
        #expect(throws: TokenError.self) {
            try ConnectTokens.verifiedHS256(Self.token(header: "not json"), signer: key)
        }
    }

    @Test(
        "claims of the wrong type are malformed, as jwt-kit has them; meta may be null",
        arguments: [
            #"{"sub":1,"exp":4000000000,"jti":"j"}"#, #"{"sub":"a","exp":"soon","jti":"j"}"#,
            #"{"sub":"a","exp":4000000000,"jti":["j"]}"#, #"{"sub":"a","exp":4000000000,"jti":"j","meta":true}"#,
            #"{"sub":"a","exp":4000000000,"jti":"j","meta":{"x":1}}"#,
            #"{"sub":"a","exp":4000000000,"jti":"j","meta":2}"#,
            #"{"sub":"a","jti":"j"}"#,
        ])
    func wrongTypes(_ claims: String) async throws {
        let token = Self.token(claims: claims)
        #expect(throws: TokenError.self) { try ConnectTokens.verifiedHS256(token, signer: Self.signer) }
        // jwt-kit refuses the same claims.
        let tokens = try await ConnectTokens(secret: ConnectTokenTests.secret)
        await #expect(throws: (any Error).self) { try await tokens.keys.verify(token, as: ConnectClaims.self) }
    }

    @Test("meta null reads as no meta")
    func nullMeta() throws {
        let token = Self.token(claims: #"{"sub":"a","exp":4000000000,"jti":"j","meta":null}"#)
        let claims = try #require(try ConnectTokens.verifiedHS256(token, signer: Self.signer))
        #expect(claims.meta == nil && claims.sub.value == "a")
    }
}
