/// Turns any string into one NATS subject token and back: letters, digits, `-` and `_` stay,
/// every other byte becomes `%XX` (its UTF-8 byte in upper-case hex). So no name can act as a
/// wildcard (`*`, `>`), add a level (`.`), break the protocol line (spaces) or collide with
/// another: the mapping is one to one. JetStream KV keys do not allow `%`, so keys use `=` as
/// the escape instead (``keyEscape``).
enum SubjectToken {
    /// The escape of subject tokens.
    static let subjectEscape = UInt8(ascii: "%")
    /// The escape of KV key tokens (`[-/_=.a-zA-Z0-9]` are the only bytes a key may hold).
    static let keyEscape = UInt8(ascii: "=")

    /// Whether `byte` is kept as it is.
    static func isPlain(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }

    private static let hex = Array("0123456789ABCDEF".utf8)

    /// `text` as one token (never empty: the empty string is the escape alone).
    static func encode(_ text: String, escape: UInt8 = subjectEscape) -> String {
        guard !text.isEmpty else { return String(decoding: [escape], as: UTF8.self) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isPlain(byte) {
                bytes.append(byte)
            } else {
                bytes.append(escape)
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The string `token` encodes, or `nil` when it is not an encoding.
    static func decode(_ token: Substring, escape: UInt8 = subjectEscape) -> String? {
        if token.utf8.count == 1, token.utf8.first == escape { return "" }
        var bytes: [UInt8] = []
        var iterator = token.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == escape else {
                guard isPlain(byte) else { return nil }
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(value), let low = iterator.next().flatMap(value) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
