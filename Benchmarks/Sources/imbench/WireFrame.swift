import NIOCore

/// The benchmark client's WebSocket wire format (RFC 6455 §5.2), read and written in place:
/// one server frame's header parsed from raw bytes, and the few frames a client sends (pong,
/// close), masked as clients must. Parsing frames here instead of through a decoder handler
/// keeps the client's cost per received message low enough to measure a fast server on the
/// same cores.
enum WireFrame {
    /// The opcodes the client reads or writes.
    static let text: UInt8 = 0x1, binary: UInt8 = 0x2, close: UInt8 = 0x8, ping: UInt8 = 0x9, pong: UInt8 = 0xA
    /// The opcode of a message's later fragments (read against a Centrifuge peer).
    static let continuation: UInt8 = 0x0

    /// The header of one complete frame at the start of some bytes.
    struct Header: Equatable {
        /// Whether this is the last fragment of its message.
        var isFinal: Bool
        /// The opcode (low four bits of the first byte).
        var opcode: UInt8
        /// Bytes before the payload (2, 4 or 10, plus 4 for a mask).
        var headerLength: Int
        /// Payload bytes.
        var payloadLength: Int
        /// The mask key, for a masked frame (servers do not mask).
        var mask: UInt32?

        /// Header and payload.
        var totalLength: Int { headerLength + payloadLength }
    }

    /// Why bytes are not a frame this client accepts.
    enum ParseError: Error, Equatable {
        /// The payload length is over the client's limit.
        case tooLarge(Int)
        /// A reserved bit is set (no extension was negotiated).
        case reservedBits
    }

    /// The header of the frame that starts `bytes`, or `nil` while its header or payload is
    /// still incomplete.
    static func header(in bytes: UnsafeRawBufferPointer, maxPayload: Int) throws(ParseError) -> Header? {
        guard bytes.count >= 2 else { return nil }
        let first = bytes[0]
        let second = bytes[1]
        guard first & 0x70 == 0 else { throw .reservedBits }
        var headerLength = 2
        var length = Int(second & 0x7F)
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            headerLength = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            var value: UInt64 = 0
            for index in 2..<10 { value = value << 8 | UInt64(bytes[index]) }
            guard value <= UInt64(maxPayload) else { throw .tooLarge(Int(clamping: value)) }
            length = Int(value)
            headerLength = 10
        }
        guard length <= maxPayload else { throw .tooLarge(length) }
        var mask: UInt32?
        if second & 0x80 != 0 {
            guard bytes.count >= headerLength + 4 else { return nil }
            var key: UInt32 = 0
            for index in headerLength..<(headerLength + 4) { key = key << 8 | UInt32(bytes[index]) }
            mask = key
            headerLength += 4
        }
        let header = Header(
            isFinal: first & 0x80 != 0, opcode: first & 0x0F, headerLength: headerLength,
            payloadLength: length, mask: mask)
        return bytes.count >= header.totalLength ? header : nil
    }

    /// Appends a masked client frame carrying `payload` (at most 125 bytes: control frames).
    static func writeControl(_ opcode: UInt8, payload: ByteBuffer, mask: UInt32, into buffer: inout ByteBuffer) {
        let bytes = payload.readableBytesView.prefix(125)
        buffer.writeInteger(0x80 | opcode)
        buffer.writeInteger(0x80 | UInt8(bytes.count))
        buffer.writeInteger(mask)
        for (index, byte) in bytes.enumerated() {
            buffer.writeInteger(byte ^ UInt8(truncatingIfNeeded: mask >> (24 - 8 * (index % 4))))
        }
    }

    /// A masked data frame (FIN set) of any length up to 64 KiB, as a client sends it.
    static func writeMasked(_ opcode: UInt8, payload: ByteBuffer, mask: UInt32, into buffer: inout ByteBuffer) {
        let count = min(payload.readableBytes, 0xFFFF)
        buffer.writeInteger(0x80 | opcode)
        if count < 126 {
            buffer.writeInteger(0x80 | UInt8(count))
        } else {
            buffer.writeInteger(UInt8(0x80 | 126))
            buffer.writeInteger(UInt16(count))
        }
        buffer.writeInteger(mask)
        for (index, byte) in payload.readableBytesView.prefix(count).enumerated() {
            buffer.writeInteger(byte ^ UInt8(truncatingIfNeeded: mask >> (24 - 8 * (index % 4))))
        }
    }
}
