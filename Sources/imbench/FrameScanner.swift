import NIOCore

/// Reads what the benchmark needs from a server frame by scanning its bytes, without a JSON
/// decoder: the frame kind from its fixed prefix, and the `"seq":` and `"t":` integers that the
/// benchmark itself put in the message's `data`.
enum FrameScanner {
    /// What a text frame is.
    enum Kind {
        /// `{"type":"ready",…}`.
        case ready
        /// `{"type":"message",…}`.
        case message
        /// Anything else (receipts, pongs).
        case other
    }

    private static let readyPrefix = Array(#"{"type":"ready""#.utf8)
    private static let messagePrefix = Array(#"{"type":"message""#.utf8)
    private static let seqKey = Array(#""seq":"#.utf8)
    private static let timeKey = Array(#""t":"#.utf8)

    /// The kind of a text frame's payload.
    @inline(__always)
    static func kind(of payload: UnsafeRawBufferPointer) -> Kind {
        if hasPrefix(payload, messagePrefix) { return .message }
        if hasPrefix(payload, readyPrefix) { return .ready }
        return .other
    }

    /// The `seq` and `t` integers of a message frame, or `nil` when either is missing.
    ///
    /// The server writes `data` after `id`, `from` and `chan`, which are strings the
    /// benchmark chose (no `"seq":` inside), so the first match is the benchmark's field.
    @inline(__always)
    static func sequenceAndTime(in payload: UnsafeRawBufferPointer) -> (seq: Int, time: UInt64)? {
        guard let seq = integer(after: seqKey, in: payload), let time = integer(after: timeKey, in: payload) else {
            return nil
        }
        return (Int(truncatingIfNeeded: seq), time)
    }

    @inline(__always)
    private static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ prefix: [UInt8]) -> Bool {
        guard bytes.count >= prefix.count else { return false }
        for index in 0..<prefix.count where bytes[index] != prefix[index] { return false }
        return true
    }

    /// The unsigned integer that follows the first occurrence of `key` (spaces allowed).
    private static func integer(after key: [UInt8], in bytes: UnsafeRawBufferPointer) -> UInt64? {
        let count = bytes.count
        let keyCount = key.count
        guard count > keyCount else { return nil }
        let first = key[0]
        var index = 0
        while index <= count - keyCount {
            if bytes[index] == first {
                var matched = true
                for offset in 1..<keyCount where bytes[index + offset] != key[offset] {
                    matched = false
                    break
                }
                if matched {
                    var position = index + keyCount
                    while position < count && bytes[position] == UInt8(ascii: " ") { position += 1 }
                    var value: UInt64 = 0
                    var digits = 0
                    while position < count {
                        let digit = bytes[position] &- UInt8(ascii: "0")
                        guard digit < 10 else { break }
                        value = value &* 10 &+ UInt64(digit)
                        digits += 1
                        position += 1
                    }
                    return digits > 0 ? value : nil
                }
            }
            index += 1
        }
        return nil
    }
}
