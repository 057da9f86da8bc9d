import NIOCore

extension ByteBuffer {
    /// Writes `json` as one Server-Sent Events `data:` event. An event's line ends at CR or LF,
    /// and JSON allows those only as whitespace between tokens (never inside a string), so
    /// each becomes a space: the event carries the same JSON value on one line.
    mutating func writeEvent(json: ByteBuffer) {
        writeStaticString("data: ")
        let start = writerIndex
        writeImmutableBuffer(json)
        let view = json.readableBytesView
        if view.contains(where: { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) {
            for (offset, byte) in view.enumerated() where byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                setInteger(UInt8(ascii: " "), at: start + offset)
            }
        }
        writeStaticString("\n\n")
    }
}
