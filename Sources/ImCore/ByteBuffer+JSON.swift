import ImBackplane
public import NIOCore

extension ByteBuffer {
    /// Writes `text` as a JSON string literal, quotes included.
    @usableFromInline
    package mutating func writeJSONString(_ text: String) {
        writeInteger(UInt8(ascii: "\""))
        // Most strings need no escape: scanned in place and copied whole.
        let copied =
            text.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
                for byte in bytes where Self.needsEscape(byte) { return false }
                writeBytes(bytes)
                return true
            } ?? false
        if !copied {
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""): writeStaticString(#"\""#)
                case UInt8(ascii: "\\"): writeStaticString(#"\\"#)
                case UInt8(ascii: "\n"): writeStaticString(#"\n"#)
                case UInt8(ascii: "\r"): writeStaticString(#"\r"#)
                case UInt8(ascii: "\t"): writeStaticString(#"\t"#)
                case ..<0x20:
                    writeStaticString(#"\u00"#)
                    writeInteger(hexDigits[Int(byte >> 4)])
                    writeInteger(hexDigits[Int(byte & 0xF)])
                default:
                    writeInteger(byte)
                }
            }
        }
        writeInteger(UInt8(ascii: "\""))
    }

    /// Whether JSON writes `byte` as an escape: a control character, a quote or a backslash.
    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }
}
