/// The members of one JSON object, read for their string and number values, with where each
/// value lies in the bytes (a JWT's header or claims, a server API request body).
///
/// Connect tokens are checked on every handshake and Foundation's `JSONDecoder` was a third of
/// that check's time; the server API's send requests spent as much decoding their bodies into
/// `Codable` values and encoding the message body again. This reads an object's members in one
/// pass with no `Codable` machinery: strings are decoded; every other value is stepped over by
/// ``JSONValidator`` (so numbers, nested objects and arrays, `true` and `false` are checked as
/// RFC 8259 has them; the latter three are kept as ``Value/other``), and each member's
/// ``Member/range`` lets a caller take a value's bytes as they are (a message body) or read an
/// array (``elements(ofArrayIn:_:)``). Duplicate member names are refused.
package struct FlatJSONObject {
    /// A member's value.
    package enum Value: Equatable, Sendable {
        /// A string, unescaped.
        case string(String)
        /// A number.
        case number(Double)
        /// `null`.
        case null
        /// Anything else (`true`, `false`, an object or an array).
        case other
    }

    /// A member's value and the bytes it was read from.
    package struct Member: Equatable, Sendable {
        /// The value.
        package var value: Value
        /// Where the value's JSON text lies in the bytes read.
        package var range: Range<Int>
    }

    /// Why the bytes are not one JSON object.
    package struct Malformed: Error, Equatable {
        /// What was wrong, and at which byte.
        package let detail: String
    }

    private let bytes: [UInt8]
    private var index = 0
    /// Whether the bytes were read as valid JSON before, so values are stepped over unchecked.
    private var validated = false

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The members of the object `bytes` hold (whitespace around it allowed).
    package static func members(of bytes: [UInt8]) throws(Malformed) -> [String: Value] {
        let fields = try fields(of: bytes)
        var values: [String: Value] = [:]
        values.reserveCapacity(fields.count)
        for entry in fields.entries { values[entry.name] = entry.member.value }
        return values
    }

    /// The members of the object that `range` of `bytes` holds (whitespace around it allowed),
    /// with where each value lies. `validated` says the range is a value an earlier read
    /// checked (a member's ``Member/range`` or an element of ``elements(ofArrayIn:_:)``): its
    /// values are then stepped over without being checked again.
    package static func fields(of bytes: [UInt8], in range: Range<Int>? = nil, validated: Bool = false)
        throws(Malformed) -> Members
    {
        let range = range ?? bytes.indices
        var reader = FlatJSONObject(bytes)
        reader.index = range.lowerBound
        reader.validated = validated
        let members = try reader.object()
        while reader.index < range.upperBound, let byte = reader.current, Self.isWhitespace(byte) { reader.index += 1 }
        guard reader.index == range.upperBound else { throw reader.error("text after the object") }
        return members
    }

    /// Where each element of the array that `range` of `bytes` holds lies; `nil` when `range`
    /// holds some other JSON value. `range` must be one an earlier read checked (a member's
    /// ``Member/range``): the elements are not checked again.
    package static func elements(ofArrayIn bytes: [UInt8], _ range: Range<Int>) throws(Malformed) -> [Range<Int>]? {
        var reader = FlatJSONObject(bytes)
        reader.index = range.lowerBound
        reader.skipWhitespace()
        guard reader.current == UInt8(ascii: "[") else { return nil }
        reader.index += 1
        var elements: [Range<Int>] = []
        reader.skipWhitespace()
        if reader.current == UInt8(ascii: "]") { return elements }
        while true {
            reader.skipWhitespace()
            let start = reader.index
            guard let end = bytes.withUnsafeBytes({ JSONValidator.end(ofValidatedValueAt: start, in: $0) }),
                end > start, end <= range.upperBound
            else { throw reader.error("expected a value") }
            elements.append(start..<end)
            reader.index = end
            reader.skipWhitespace()
            switch reader.current {
            case UInt8(ascii: ","): reader.index += 1
            case UInt8(ascii: "]"): return elements
            default: throw reader.error("expected ',' or ']'")
            }
        }
    }

    /// The string that `range` of `bytes` holds, unescaped; `nil` when it holds another value.
    package static func string(in bytes: [UInt8], _ range: Range<Int>) throws(Malformed) -> String? {
        var reader = FlatJSONObject(bytes)
        reader.index = range.lowerBound
        reader.skipWhitespace()
        guard reader.current == UInt8(ascii: "\"") else { return nil }
        return try reader.string()
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private func error(_ what: String) -> Malformed { Malformed(detail: "\(what) at byte \(index)") }

    private mutating func skipWhitespace() {
        while let byte = current, Self.isWhitespace(byte) { index += 1 }
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    private mutating func expect(_ byte: UInt8) throws(Malformed) {
        skipWhitespace()
        guard current == byte else { throw error("expected '\(Character(Unicode.Scalar(byte)))'") }
        index += 1
    }

    private mutating func object() throws(Malformed) -> Members {
        try expect(UInt8(ascii: "{"))
        var members = Members()
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            index += 1
            return members
        }
        while true {
            skipWhitespace()
            let name = try string()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            let start = index
            let value = try value()
            guard members.add(name, Member(value: value, range: start..<index)) else {
                throw error("duplicate member \"\(name)\"")
            }
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return members
            default: throw error("expected ',' or '}'")
            }
        }
    }

    private mutating func value() throws(Malformed) -> Value {
        guard current != UInt8(ascii: "\"") else { return .string(try string()) }
        // Anything else is stepped over by the validator, which checks it on the way.
        let start = index
        let validated = validated
        guard
            let end = bytes.withUnsafeBytes({
                validated
                    ? JSONValidator.end(ofValidatedValueAt: start, in: $0) : JSONValidator.end(ofValueAt: start, in: $0)
            }), end > start
        else {
            throw error("expected a value")
        }
        index = end
        let text = bytes[start..<end]
        switch text.first ?? 0 {
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            guard let number = Double(String(decoding: text, as: UTF8.self)), number.isFinite else {
                throw error("number out of range")
            }
            return .number(number)
        case UInt8(ascii: "n"): return .null
        default: return .other
        }
    }

    private mutating func literal(_ word: StaticString) throws(Malformed) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count,
            word.withUTF8Buffer({ bytes[index..<index + count].elementsEqual($0) })
        else { throw error("bad literal") }
        index += count
    }

    private mutating func string() throws(Malformed) -> String {
        guard current == UInt8(ascii: "\"") else { throw error("expected a string") }
        index += 1
        let start = index
        // The common case: no escapes, so the bytes are the string.
        var seen: UInt8 = 0
        while let byte = current, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\"), byte >= 0x20 {
            seen |= byte
            index += 1
        }
        if current == UInt8(ascii: "\"") {
            guard let string = Self.string(bytes[start..<index], isASCII: seen < 0x80) else {
                throw error("invalid UTF-8")
            }
            index += 1
            return string
        }
        var text = Array(bytes[start..<index])
        while true {
            guard let byte = current else { throw error("unterminated string") }
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let string = Self.string(text[...], isASCII: false) else { throw error("invalid UTF-8") }
                return string
            case UInt8(ascii: "\\"): try unescape(into: &text)
            case ..<0x20: throw error("control character in a string")
            default: text.append(byte)
            }
        }
    }

    /// `utf8` as a string, or `nil` when it is not valid UTF-8. Decoding repairs what is
    /// invalid, so the bytes are valid exactly when the string's are the same (one pass of the
    /// specialised decoder and a compare, where `String(validating:as:)` takes a generic path).
    private static func string(_ utf8: ArraySlice<UInt8>, isASCII: Bool) -> String? {
        let string = String(decoding: utf8, as: UTF8.self)
        return isASCII || string.utf8.elementsEqual(utf8) ? string : nil
    }

    private mutating func unescape(into text: inout [UInt8]) throws(Malformed) {
        guard let byte = current else { throw error("unterminated escape") }
        index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(byte)
        case UInt8(ascii: "b"): text.append(0x08)
        case UInt8(ascii: "f"): text.append(0x0C)
        case UInt8(ascii: "n"): text.append(0x0A)
        case UInt8(ascii: "r"): text.append(0x0D)
        case UInt8(ascii: "t"): text.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate must be followed by an escaped low one.
                try literal("\\u")
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw error("unpaired surrogate") }
            text.append(contentsOf: String(Character(unicode)).utf8)
        default: throw error("bad escape")
        }
    }

    private mutating func hex4() throws(Malformed) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("short \\u escape") }
        var value: UInt32 = 0
        for byte in bytes[index..<index + 4] {
            guard let digit = Self.hexDigit(byte) else { throw error("bad \\u escape") }
            value = value << 4 | digit
        }
        index += 4
        return value
    }

    private static func hexDigit(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
