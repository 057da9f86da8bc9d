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
        let read = try members(#" { "sub" : "alice", "exp":1900000000.5, "n":-2e3, "t":true, "f":false, "z":null, "#
            + #""o":{"a":[1,{"b":"}"}],"c":{}}, "a":[], "s":"" } "#)
        #expect(read["sub"] == .string("alice"))
        #expect(read["exp"] == .number(1_900_000_000.5))
        #expect(read["n"] == .number(-2000))
        #expect(read["s"] == .string(""))
        for name in ["t", "f", "z", "o", "a"] { #expect(read[name] == .other, "\(name)") }
        #expect(read.count == 9)
        #expect(try members("{}").isEmpty)
    }

    @Test("escapes decode as JSON says, surrogate pairs included")
    func escapes() throws {
        let read = try members(#"{"m":"q\"b\\s\/\b\f\n\r\t\u00e9\u4e2d\ud83d\ude00 end"}"#)
        #expect(read["m"] == .string("q\"b\\s/\u{08}\u{0C}\n\r\té中😀 end"))
        #expect(try members(#"{"raw":"Zoë 用户 😀"}"#)["raw"] == .string("Zoë 用户 😀"))
    }

    @Test("what is not one well-formed object is refused", arguments: [
        "", "[]", "\"x\"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1 \"b\":2}", "{a:1}", "{\"a\":1}x",
        "{\"a\":tru}", "{\"a\":nul}", "{\"a\":\"x}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\ud83d\"}",
        "{\"a\":\"\\ude00\"}", "{\"a\":\"tab\there\"}", "{\"a\":[1,}", "{\"a\":{\"b\"}}", "{\"a\":1e}", "{\"a\":-}",
        "{\"a\":1,\"a\":2}",
    ])
    func malformed(_ text: String) {
        #expect(isMalformed(text), "\(text)")
    }

    @Test("invalid UTF-8 inside a string is refused")
    func invalidUTF8() {
        let bytes = Array(#"{"a":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        #expect((try? FlatJSONObject.members(of: bytes)) == nil)
    }

    @Test("nesting deeper than the limit is refused, not a stack overflow")
    func depth() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(isMalformed(#"{"a":"# + deep + "}"))
        let fine = String(repeating: "[", count: FlatJSONObject.maximumDepth) + String(repeating: "]", count: FlatJSONObject.maximumDepth)
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

    @Test("the HS256 path reads what jwt-kit reads", arguments: [
        nil, "", "plain", #"{"name":"Zoë","plan":"pro"}"#, "line\nbreak\t\"quoted\" \\ / \u{1F600} \u{7F} \u{0}",
    ])
    func sameAsJWTKit(_ meta: String?) async throws {
        let tokens = try await ConnectTokens(secret: ConnectTokenTests.secret)
        let token = try await tokens.mint(for: "用户 a", meta: meta, lifetime: .seconds(90), now: ConnectTokenTests.epoch)
        let secret = try #require(tokens.secret)
        let fast = try #require(try ConnectTokens.verifiedHS256(token, secret: secret))
        let reference = try await tokens.keys.verify(token, as: ConnectClaims.self)
        #expect(fast == reference)
        #expect(fast.meta == meta)
    }

    @Test("a header that names another algorithm or a key id is left to the key collection")
    func otherHeaders() throws {
        let secret = "0123456789abcdef0123456789abcdef-test-secret"
        let key = SymmetricKey(data: Array(secret.utf8))
        func token(header: String) -> String {
            let encode = { (text: String) in
                Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                    .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            }
            let signed = encode(header) + "." + encode(#"{"sub":"a","exp":4000000000,"jti":"j"}"#)
            let mac = HMAC<SHA256>.authenticationCode(for: Array(signed.utf8), using: key)
            return signed + "." + Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        #expect(try ConnectTokens.verifiedHS256(token(header: #"{"alg":"HS256"}"#), secret: key)?.jti.value == "j")
        #expect(try ConnectTokens.verifiedHS256(token(header: #"{"alg":"HS512"}"#), secret: key) == nil)
        #expect(try ConnectTokens.verifiedHS256(token(header: #"{"alg":"HS256","kid":"k1"}"#), secret: key) == nil)
        #expect(throws: TokenError.self) { try ConnectTokens.verifiedHS256(token(header: "not json"), secret: key) }
    }
}
