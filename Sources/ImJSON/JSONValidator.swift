/// Checks that bytes are exactly one JSON value (RFC 8259), without building it.
///
/// Runs on every message a back-end sends (``isValid(_:)``), so it allocates nothing and reads
/// each byte once; a connect token's claims reader uses it to step over values it does not
/// need (``end(ofValueAt:in:)``). Nesting is limited to ``maximumDepth`` levels so hostile
/// input cannot exhaust the stack.
package struct JSONValidator {
    /// The deepest nesting of arrays and objects accepted.
    package static let maximumDepth = 512

    private let bytes: UnsafeRawBufferPointer
    private var index = 0

    private init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Whether `bytes` hold exactly one JSON value, with optional whitespace around it.
    package static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var validator = JSONValidator(bytes)
        validator.skipWhitespace()
        guard validator.value(depth: 0) else { return false }
        validator.skipWhitespace()
        return validator.index == bytes.count
    }

    /// Where the one JSON value that starts at `start` ends, or `nil` when none does.
    package static func end(ofValueAt start: Int, in bytes: UnsafeRawBufferPointer) -> Int? {
        var validator = JSONValidator(bytes)
        validator.index = start
        return validator.value(depth: 0) ? validator.index : nil
    }

    /// Where the value that starts at `start` ends, for bytes this validator already found to
    /// be valid JSON: a second reader steps over a value by its brackets and quotes alone,
    /// without checking it again. `nil` only when the bytes end first.
    package static func end(ofValidatedValueAt start: Int, in bytes: UnsafeRawBufferPointer) -> Int? {
        var index = start
        var depth = 0
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                index += 1
                while true {
                    index = firstByte(in: bytes, from: index, flaggedBy: quotesAndBackslashes)
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\\") else { break }
                    index += 2
                }
                index += 1
                if depth == 0 { return index <= bytes.count ? index : nil }
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                index += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard depth > 0 else { return index }
                depth -= 1
                index += 1
                if depth == 0 { return index }
            case UInt8(ascii: ","), 0x20, 0x0A, 0x0D, 0x09:
                if depth == 0 { return index }
                index += 1
            default:
                index += 1
            }
        }
        return depth == 0 && index > start ? index : nil
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        guard current == byte else { return false }
        index += 1
        return true
    }

    private mutating func value(depth: Int) -> Bool {
        guard let byte = current else { return false }
        switch byte {
        case UInt8(ascii: "{"): return object(depth: depth + 1)
        case UInt8(ascii: "["): return array(depth: depth + 1)
        case UInt8(ascii: "\""): return string()
        case UInt8(ascii: "t"): return literal("true")
        case UInt8(ascii: "f"): return literal("false")
        case UInt8(ascii: "n"): return literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
        default: return false
        }
    }

    private mutating func object(depth: Int) -> Bool {
        guard depth <= Self.maximumDepth else { return false }
        index += 1
        skipWhitespace()
        if consume(UInt8(ascii: "}")) { return true }
        while true {
            guard current == UInt8(ascii: "\""), string() else { return false }
            skipWhitespace()
            guard consume(UInt8(ascii: ":")) else { return false }
            skipWhitespace()
            guard value(depth: depth) else { return false }
            skipWhitespace()
            if consume(UInt8(ascii: "}")) { return true }
            guard consume(UInt8(ascii: ",")) else { return false }
            skipWhitespace()
        }
    }

    private mutating func array(depth: Int) -> Bool {
        guard depth <= Self.maximumDepth else { return false }
        index += 1
        skipWhitespace()
        if consume(UInt8(ascii: "]")) { return true }
        while true {
            guard value(depth: depth) else { return false }
            skipWhitespace()
            if consume(UInt8(ascii: "]")) { return true }
            guard consume(UInt8(ascii: ",")) else { return false }
            skipWhitespace()
        }
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count else { return false }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return false }
        index += count
        return true
    }

    private mutating func digits() -> Bool {
        let start = index
        while let byte = current, byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") { index += 1 }
        return index > start
    }

    private mutating func number() -> Bool {
        _ = consume(UInt8(ascii: "-"))
        if consume(UInt8(ascii: "0")) {
            if let byte = current, byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") { return false }
        } else if !digits() {
            return false
        }
        if consume(UInt8(ascii: ".")) && !digits() { return false }
        if consume(UInt8(ascii: "e")) || consume(UInt8(ascii: "E")) {
            if !consume(UInt8(ascii: "+")) { _ = consume(UInt8(ascii: "-")) }
            guard digits() else { return false }
        }
        return true
    }

    /// A string, with escapes checked and UTF-8 validated (no surrogates, no overlongs).
    private mutating func string() -> Bool {
        index += 1
        while true {
            // Printable ASCII other than `"` and `\` needs no look: stepped over to the next
            // byte that does.
            index = firstByte(in: bytes, from: index, flaggedBy: textNeedingALook)
            guard let byte = current else { return false }
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return true
            case UInt8(ascii: "\\"):
                index += 1
                guard escape() else { return false }
            case 0..<0x20:
                return false
            default:
                guard scalar() else { return false }
            }
        }
    }

    private mutating func escape() -> Bool {
        guard let byte = current else { return false }
        index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return true
        case UInt8(ascii: "u"):
            guard bytes.count - index >= 4 else { return false }
            for offset in 0..<4 where !bytes[index + offset].isHexDigit { return false }
            index += 4
            return true
        default:
            return false
        }
    }

    /// One multi-byte UTF-8 scalar starting at `index`.
    private mutating func scalar() -> Bool {
        let lead = bytes[index]
        let count: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: count = 1
        case 0xE0:
            count = 2
            lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: count = 2
        case 0xED:
            count = 2
            upper = 0x9F
        case 0xF0:
            count = 3
            lower = 0x90
        case 0xF1...0xF3: count = 3
        case 0xF4:
            count = 3
            upper = 0x8F
        default: return false
        }
        guard bytes.count - index > count else { return false }
        let second = bytes[index + 1]
        guard second >= lower && second <= upper else { return false }
        for offset in stride(from: 2, through: count, by: 1) where bytes[index + offset] & 0xC0 != 0x80 { return false }
        index += count + 1
        return true
    }
}

/// Where the first byte from `index` on that `flags` flags is (or the end): the bytes are read
/// eight at a time, and a word with no flagged byte is stepped over whole. A message body's text
/// is most of a batch request's bytes, and most of its bytes need no look.
///
/// `flags` sets the high bit of every byte of a word that needs a look; it may set it on a byte
/// after one that needs a look too (a borrow carried up), never before, so the lowest flag is
/// exact.
@inline(__always)
private func firstByte(in bytes: UnsafeRawBufferPointer, from index: Int, flaggedBy flags: (UInt64) -> UInt64) -> Int {
    var index = index
    while bytes.count - index >= 8 {
        let flagged = flags(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)))
        if flagged != 0 { return index + flagged.trailingZeroBitCount >> 3 }
        index += 8
    }
    while index < bytes.count, flags(UInt64(bytes[index])) & 0x80 == 0 { index += 1 }
    return index
}

private let ones: UInt64 = 0x0101_0101_0101_0101
private let highBits: UInt64 = 0x8080_8080_8080_8080

/// The high bit of each byte of `word` below `limit` (at most 0x80).
@inline(__always)
private func bytes(below limit: UInt8, in word: UInt64) -> UInt64 {
    (word &- ones &* UInt64(limit)) & ~word & highBits
}

/// The high bit of each `"` and `\` byte of `word`.
@inline(__always)
private func quotesAndBackslashes(_ word: UInt64) -> UInt64 {
    bytes(below: 1, in: word ^ (ones &* 0x22)) | bytes(below: 1, in: word ^ (ones &* 0x5C))
}

/// The high bit of each byte of `word` that a string's text needs looked at: `"`, `\`, a
/// control character, or a byte of a multi-byte UTF-8 sequence.
@inline(__always)
private func textNeedingALook(_ word: UInt64) -> UInt64 {
    word & highBits | bytes(below: 0x20, in: word) | quotesAndBackslashes(word)
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }
}
