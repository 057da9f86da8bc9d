import ImBackplane
import NIOCore

/// One bus message as it is stored in the log: the subject's length (4 bytes, big endian), the
/// subject (UTF-8), the payload's length (4 bytes, big endian), the payload.
enum LogRecord {
    /// The longest subject a record may carry.
    static let maximumSubjectLength = 64 * 1024
    /// The largest payload a record may carry.
    static let maximumPayloadLength = 64 * 1024 * 1024

    /// Appends `message` as a record to `bytes`.
    static func append(_ message: BusMessage, to bytes: inout [UInt8]) throws(BackplaneError) {
        let subject = Array(message.subject.utf8)
        let payload = message.payload.readableBytesView
        guard subject.count <= maximumSubjectLength, payload.count <= maximumPayloadLength else {
            throw .protocolViolation(
                "a message over \(maximumPayloadLength) bytes or a subject over "
                    + "\(maximumSubjectLength) bytes does not fit a log record")
        }
        appendLength(subject.count, to: &bytes)
        bytes += subject
        appendLength(payload.count, to: &bytes)
        bytes += payload
    }

    /// The complete records at the start of `bytes`, and how many bytes they took; a record cut
    /// short stays for the next read. Bytes that cannot be a record (a torn or foreign file) end
    /// the parse with `corrupt`, so the reader skips what it has.
    static func parse(_ bytes: ArraySlice<UInt8>) -> (messages: [BusMessage], consumed: Int, corrupt: Bool) {
        var messages: [BusMessage] = []
        var index = bytes.startIndex
        while true {
            guard let subjectLength = length(in: bytes, at: index) else { break }
            guard subjectLength <= maximumSubjectLength else { return (messages, index - bytes.startIndex, true) }
            let subjectStart = index + 4
            guard let payloadLength = length(in: bytes, at: subjectStart + subjectLength) else { break }
            guard payloadLength <= maximumPayloadLength else { return (messages, index - bytes.startIndex, true) }
            let payloadStart = subjectStart + subjectLength + 4
            guard bytes.endIndex - payloadStart >= payloadLength else { break }
            let subject = String(decoding: bytes[subjectStart..<(subjectStart + subjectLength)], as: UTF8.self)
            let payload = ByteBuffer(bytes: bytes[payloadStart..<(payloadStart + payloadLength)])
            messages.append(BusMessage(subject: subject, payload: payload))
            index = payloadStart + payloadLength
        }
        return (messages, index - bytes.startIndex, false)
    }

    private static func appendLength(_ length: Int, to bytes: inout [UInt8]) {
        let value = UInt32(truncatingIfNeeded: length)
        bytes += [
            UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8),
            UInt8(truncatingIfNeeded: value),
        ]
    }

    private static func length(in bytes: ArraySlice<UInt8>, at index: Int) -> Int? {
        guard index >= bytes.startIndex, bytes.endIndex - index >= 4 else { return nil }
        return bytes[index..<(index + 4)].reduce(0) { $0 << 8 | Int($1) }
    }
}
