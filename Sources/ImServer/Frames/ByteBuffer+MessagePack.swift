import NIOCore

/// The few MessagePack types the compact encoding uses (docs/protocol.md §9): arrays,
/// non-negative integers, strings and nil, each in its shortest form.
extension ByteBuffer {
    mutating func writeMessagePackArrayHeader(_ count: Int) {
        if count < 16 {
            writeInteger(UInt8(0x90 | count))
        } else {
            writeInteger(UInt8(0xDC))
            writeInteger(UInt16(clamping: count))
        }
    }

    mutating func writeMessagePackNil() {
        writeInteger(UInt8(0xC0))
    }

    /// A non-negative integer (a negative one is written as 0: the encoding has none).
    mutating func writeMessagePackInteger<Value: BinaryInteger>(_ value: Value) {
        let value = UInt64(clamping: value)
        switch value {
        case 0..<128:
            writeInteger(UInt8(value))
        case 128...0xFF:
            writeInteger(UInt8(0xCC))
            writeInteger(UInt8(value))
        case 0x100...0xFFFF:
            writeInteger(UInt8(0xCD))
            writeInteger(UInt16(value))
        case 0x1_0000...0xFFFF_FFFF:
            writeInteger(UInt8(0xCE))
            writeInteger(UInt32(value))
        default:
            writeInteger(UInt8(0xCF))
            writeInteger(value)
        }
    }

    mutating func writeMessagePackStringHeader(_ length: Int) {
        switch length {
        case 0..<32:
            writeInteger(UInt8(0xA0 | length))
        case 32...0xFF:
            writeInteger(UInt8(0xD9))
            writeInteger(UInt8(length))
        case 0x100...0xFFFF:
            writeInteger(UInt8(0xDA))
            writeInteger(UInt16(length))
        default:
            writeInteger(UInt8(0xDB))
            writeInteger(UInt32(clamping: length))
        }
    }

    mutating func writeMessagePackString(_ string: String) {
        writeMessagePackStringHeader(string.utf8.count)
        writeString(string)
    }

    /// `text` (UTF-8 already, such as a message's JSON) as a string.
    mutating func writeMessagePackString(_ text: ByteBuffer) {
        writeMessagePackStringHeader(text.readableBytes)
        writeImmutableBuffer(text)
    }
}
