import ImBackplane
public import NIOCore

extension ByteBuffer {
    /// Writes `text` as a JSON string literal, quotes included, with `prefix` before it and
    /// `suffix` after it (JSON text written as it is: `{"id":` and `}` around an id, say).
    @usableFromInline
    package mutating func writeJSONString(
        _ text: String, after prefix: StaticString = "", before suffix: StaticString = ""
    ) {
        // `withUTF8` makes a bridged string contiguous first; a native one is used as it is.
        var text = text
        text.withUTF8 { bytes in
            // Most strings need no escape: all of it in one write.
            guard bytes.contains(where: Self.needsEscape) else {
                let head = prefix.utf8CodeUnitCount
                let count = head + bytes.count + 2 + suffix.utf8CodeUnitCount
                writeWithUnsafeMutableBytes(minimumWritableBytes: count) { memory in
                    memory.copyMemory(from: UnsafeRawBufferPointer(start: prefix.utf8Start, count: head))
                    memory[head] = UInt8(ascii: "\"")
                    UnsafeMutableRawBufferPointer(rebasing: memory[(head + 1)...]).copyMemory(
                        from: UnsafeRawBufferPointer(bytes))
                    memory[head + bytes.count + 1] = UInt8(ascii: "\"")
                    UnsafeMutableRawBufferPointer(rebasing: memory[(head + bytes.count + 2)...]).copyMemory(
                        from: UnsafeRawBufferPointer(start: suffix.utf8Start, count: suffix.utf8CodeUnitCount))
                    return count
                }
                return
            }
            writeStaticString(prefix)
            defer { writeStaticString(suffix) }
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
