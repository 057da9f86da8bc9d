import Foundation
import ImCore
import ImHelper
import NIOCore
import Testing

@Suite("JSONPayload")
struct JSONPayloadTests {
    private static func isInvalidJSON(_ error: PayloadError) -> Bool {
        if case .invalidJSON = error { return true }
        return false
    }

    /// Decodes the payload's bytes with an independent decoder.
    private static func decoded<T: Decodable>(_ type: T.Type, _ payload: JSONPayload) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(payload.bytes.readableBytesView))
    }

    @Test(
        "every kind of JSON value is accepted and kept byte for byte",
        arguments: [
            #"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
            #"[1, 2.5, -3e10, "x"]"#,
            #""just a string""#,
            "42",
            "-0.5",
            "true",
            "false",
            "null",
            "  { \"padded\" : true }\n",
            #"{"unicode":"héllo 🌍 \u00e9"}"#,
            "[]",
            "{}",
        ])
    func acceptsValidJSON(_ text: String) throws {
        let payload = try JSONPayload(json: text)
        #expect(payload.json == text)
        #expect(Array(payload.bytes.readableBytesView) == Array(text.utf8))
    }

    @Test(
        "text that is not one JSON value is refused with invalidJSON",
        arguments: [
            "{",
            "}",
            #"{"a":}"#,
            #"{"a" 1}"#,
            "[1,2",
            "'single quoted'",
            "undefined",
            "NaN",
            "tru",
            #""unterminated"#,
            "hello",
            "{a:1}",
        ])
    func refusesInvalidJSON(_ text: String) {
        #expect {
            _ = try JSONPayload(json: text)
        } throws: { error in
            (error as? PayloadError).map(Self.isInvalidJSON) ?? false
        }
    }

    @Test(
        "two JSON values in one body are refused",
        arguments: [
            "1 2",
            "{} {}",
            #"{"a":1}{"b":2}"#,
            "[1] x",
        ])
    func refusesTrailingContent(_ text: String) {
        #expect {
            _ = try JSONPayload(json: text)
        } throws: { error in
            (error as? PayloadError).map(Self.isInvalidJSON) ?? false
        }
    }

    @Test("an empty or blank body is refused with invalidJSON", arguments: ["", " ", "\n\t "])
    func refusesEmpty(_ text: String) {
        #expect {
            _ = try JSONPayload(json: text)
        } throws: { error in
            (error as? PayloadError).map(Self.isInvalidJSON) ?? false
        }
        #expect {
            _ = try JSONPayload(validating: ByteBuffer(string: text))
        } throws: { error in
            (error as? PayloadError).map(Self.isInvalidJSON) ?? false
        }
    }

    @Test("validating looks only at the readable bytes of the buffer")
    func validatingUsesReadableBytes() throws {
        var buffer = ByteBuffer(string: "garbage[1,2,3]")
        buffer.moveReaderIndex(forwardBy: "garbage".utf8.count)
        let payload = try JSONPayload(validating: buffer)
        #expect(payload.json == "[1,2,3]")
        #expect(try Self.decoded([Int].self, payload) == [1, 2, 3])

        var empty = ByteBuffer(string: "{}")
        empty.moveReaderIndex(forwardBy: 2)
        #expect(throws: PayloadError.self) { _ = try JSONPayload(validating: empty) }
    }

    @Test("invalid UTF-8 is refused")
    func refusesInvalidUTF8() {
        let bytes = ByteBuffer(bytes: [UInt8(ascii: "\""), 0xFF, 0xFE, UInt8(ascii: "\"")])
        #expect(throws: PayloadError.self) { _ = try JSONPayload(validating: bytes) }
    }

    private struct Sample: Codable, Equatable {
        var name: String
        var count: Int
        var tags: [String]
        var nested: Nested?

        struct Nested: Codable, Equatable {
            var flag: Bool
            var ratio: Double
        }
    }

    @Test("an Encodable value is encoded as JSON that decodes back to it")
    func encodesEncodable() throws {
        let value = Sample(
            name: "Zoë \"quoted\" \\ back", count: -7, tags: ["a", "", "🙂"],
            nested: .init(flag: true, ratio: 0.25))
        let payload = try JSONPayload(encoding: value)
        #expect(try Self.decoded(Sample.self, payload) == value)
        // The result is itself valid JSON by the type's own rules.
        #expect(try JSONPayload(validating: payload.bytes) == payload)

        let withoutNested = Sample(name: "", count: 0, tags: [], nested: nil)
        #expect(try Self.decoded(Sample.self, try JSONPayload(encoding: withoutNested)) == withoutNested)
    }

    @Test("encoding scalars and collections gives the matching JSON")
    func encodesScalars() throws {
        #expect(try JSONPayload(encoding: 12).json == "12")
        #expect(try JSONPayload(encoding: true).json == "true")
        #expect(try Self.decoded([String: [Int]].self, try JSONPayload(encoding: ["k": [1, 2]])) == ["k": [1, 2]])
        let optional: Int? = nil
        #expect(try JSONPayload(encoding: optional).json == "null")
    }

    @Test("a value JSON cannot represent is refused with notEncodable")
    func refusesUnencodable() {
        #expect {
            _ = try JSONPayload(encoding: Double.nan)
        } throws: { error in
            if case .notEncodable = error as? PayloadError { return true }
            return false
        }
        #expect {
            _ = try JSONPayload(encoding: ["x": Double.infinity])
        } throws: { error in
            if case .notEncodable = error as? PayloadError { return true }
            return false
        }
    }

    @Test(
        "text makes a JSON string that decodes back to the original text",
        arguments: [
            "",
            "plain",
            "quote \" inside",
            "back\\slash",
            "new\nline\r\ttab",
            "control \u{01}\u{1F}\u{00} chars",
            "unicode é 中文 🌍",
            "</script>",
            "\u{2028}\u{2029}",
        ])
    func textEscapes(_ text: String) throws {
        let payload = JSONPayload.text(text)
        let json = payload.json
        #expect(json.hasPrefix("\"") && json.hasSuffix("\"") && json.count >= 2)
        // No raw control characters survive: they must be escaped.
        #expect(!json.utf8.contains { $0 < 0x20 })
        #expect(try Self.decoded(String.self, payload) == text)
        #expect(try JSONPayload(validating: payload.bytes) == payload)
    }

    @Test("payloads are equal exactly when their bytes are")
    func equality() throws {
        #expect(try JSONPayload(json: "[1,2]") == JSONPayload(json: "[1,2]"))
        #expect(try JSONPayload(json: "[1,2]") != JSONPayload(json: "[1, 2]"))
    }
}
