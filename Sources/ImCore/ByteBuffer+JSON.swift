import ImBackplane
public import NIOCore

extension ByteBuffer {
    /// Writes `text` as a JSON string literal, quotes included.
    @usableFromInline
    package mutating func writeJSONString(_ text: String) {
        // `withUTF8` makes a bridged string contiguous first; a native one is used as it is.
        var text = text
        text.withUTF8 { bytes in
            // Most strings need no escape: the quotes and the bytes in one write.
            guard bytes.contains(where: Self.needsEscape) else {
                writeWithUnsafeMutableBytes(minimumWritableBytes: bytes.count + 2) { memory in
                    memory[0] = UInt8(ascii: "\"")
                    UnsafeMutableRawBufferPointer(rebasing: memory[1...]).copyMemory(
                        from: UnsafeRawBufferPointer(bytes))
                    memory[bytes.count + 1] = UInt8(ascii: "\"")
                    return bytes.count + 2
                }
                return
            }
            writeInteger(UInt8(ascii: "\""))
            for byte in bytes {
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
            writeInteger(UInt8(ascii: "\""))
        }
    }

    /// Whether JSON writes `byte` as an escape: a control character, a quote or a backslash.
    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }
}
