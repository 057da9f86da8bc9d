import Foundation
import ImCore
import Testing

@Suite("JSONValue")
struct JSONValueTests {
    private static func decode(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    private static func encode(_ value: JSONValue, sorted: Bool = true) throws -> String {
        let encoder = JSONEncoder()
        if sorted { encoder.outputFormatting = [.sortedKeys] }
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    @Test("every kind of value decodes to the matching case")
    func decodesEachCase() throws {
        #expect(try Self.decode("null") == .null)
        #expect(try Self.decode("true") == .bool(true))
        #expect(try Self.decode("false") == .bool(false))
        #expect(try Self.decode("42") == .number(42))
        #expect(try Self.decode("-1.5") == .number(Decimal(string: "-1.5")!))
        #expect(try Self.decode(#""hi""#) == .string("hi"))
        #expect(try Self.decode(#""""#) == .string(""))
        #expect(try Self.decode("[]") == .array([]))
        #expect(try Self.decode("{}") == .object([:]))
        #expect(try Self.decode(#"[1,"1",true,null]"#) == .array([.number(1), .string("1"), .bool(true), .null]))
    }

    @Test("booleans and numbers are not confused with each other or with strings")
    func noTypeConfusion() throws {
        #expect(try Self.decode("1") != .bool(true))
        #expect(try Self.decode("0") != .bool(false))
        #expect(try Self.decode("true") != .number(1))
        #expect(try Self.decode(#""true""#) == .string("true"))
        #expect(try Self.decode(#""12""#) == .string("12"))
    }

    @Test("a nested value survives decode, encode and decode again")
    func nestedRoundTrip() throws {
        let text = #"""
            {"user":{"id":"u-1","tags":["a","b",""],"age":31,"score":-0.25,"active":true,"manager":null,
             "history":[[1,2],[],{"deep":{"deeper":[{"x":"y"}]}}],"name":"Zoë \"Z\" \\ 🌍\n"}}
            """#
        let value = try Self.decode(text)
        guard case .object(let root) = value, case .object(let user)? = root["user"] else {
            Issue.record("expected an object with a user object, got \(value)")
            return
        }
        #expect(user["id"] == .string("u-1"))
        #expect(user["tags"] == .array([.string("a"), .string("b"), .string("")]))
        #expect(user["age"] == .number(31))
        #expect(user["active"] == .bool(true))
        #expect(user["manager"] == .null)
        #expect(user["name"]?.string == "Zoë \"Z\" \\ 🌍\n")
        #expect(
            value["user"]?["history"]
                == .array([
                    .array([.number(1), .number(2)]),
                    .array([]),
                    .object(["deep": .object(["deeper": .array([.object(["x": .string("y")])])])]),
                ]))

        let reencoded = try Self.encode(value)
        #expect(try Self.decode(reencoded) == value)
        // Encoding is stable: a second pass gives the same text.
        #expect(try Self.encode(try Self.decode(reencoded)) == reencoded)
        // And agrees with an independent parser.
        let independent = try JSONSerialization.jsonObject(with: Data(reencoded.utf8)) as? [String: Any]
        let independentUser = independent?["user"] as? [String: Any]
        #expect(independentUser?["id"] as? String == "u-1")
        #expect(independentUser?["name"] as? String == "Zoë \"Z\" \\ 🌍\n")
    }

    @Test("a value built in code encodes to JSON an independent parser reads back")
    func encodeBuiltValue() throws {
        let value: JSONValue = .object([
            "s": .string("a\"b"),
            "n": .number(7),
            "b": .bool(false),
            "z": .null,
            "a": .array([.number(1), .string("2")]),
        ])
        let text = try Self.encode(value)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(parsed["s"] as? String == "a\"b")
        #expect((parsed["n"] as? NSNumber)?.intValue == 7)
        #expect((parsed["b"] as? NSNumber)?.boolValue == false)
        #expect(parsed["z"] is NSNull)
        #expect(parsed.keys.sorted() == ["a", "b", "n", "s", "z"])
        #expect(try Self.decode(text) == value)
    }

    @Test(
        "large integers survive decode and re-encode exactly",
        arguments: [
            "12345678901234567890",
            "-9223372036854775809",
            "9007199254740993",
            "18446744073709551615",
        ])
    func largeIntegerExact(_ number: String) throws {
        #expect(try Self.encode(try Self.decode(number)) == number)
        #expect(try Self.encode(try Self.decode("[\(number)]")) == "[\(number)]")
        #expect(try Self.encode(try Self.decode(#"{"id":\#(number)}"#)) == #"{"id":\#(number)}"#)
        // Distinct neighbours stay distinct (a Double would merge them).
        let text = "[\(number),\(number.dropLast())\(number.last == "0" ? "1" : "0")]"
        guard case .array(let items) = try Self.decode(text) else {
            Issue.record("expected an array")
            return
        }
        #expect(items.count == 2)
        #expect(items[0] != items[1])
    }

    @Test("subscript and string accessors")
    func accessors() throws {
        let value = try Self.decode(#"{"a":"x","b":1}"#)
        #expect(value["a"]?.string == "x")
        #expect(value["b"]?.string == nil)
        #expect(value["missing"] == nil)
        #expect(JSONValue.array([.string("x")])["a"] == nil)
        #expect(JSONValue.string("x")["a"] == nil)
        #expect(JSONValue.number(1).string == nil)
    }

    @Test("description is deterministic with sorted keys")
    func descriptionSortsKeys() {
        let value: JSONValue = .object(["b": .number(2), "a": .array([.bool(true), .null])])
        #expect(value.description == #"{"a":[true,null],"b":2}"#)
    }

    @Test("malformed JSON fails to decode", arguments: ["", "{", "[1,", "nul", #"{"a" 1}"#])
    func malformedFails(_ text: String) {
        #expect(throws: (any Error).self) { _ = try Self.decode(text) }
    }
}
