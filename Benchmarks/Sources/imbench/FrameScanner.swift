import NIOCore

/// Reads what the benchmark needs from a server frame by scanning its bytes, without a JSON
/// or MessagePack decoder: the frame kind from its fixed prefix, and the `"seq":` and `"t":` integers that the
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
    private static let timeFollower = Array(#","t":"#.utf8)

    /// The kind of a frame's payload: JSON text, or a compact (MessagePack) frame, an array
    /// whose first element is the type (protocol.md §9: `[1, …]` a message, `[0, …]` ready).
    @inline(__always)
    static func kind(of payload: UnsafeRawBufferPointer) -> Kind {
        if payload.hasBytes(messagePrefix, at: 0) { return .message }
        if payload.hasBytes(readyPrefix, at: 0) { return .ready }
        if payload.count >= 2, payload[0] & 0xF0 == 0x90 {
            switch payload[1] {
            case 1: return .message
            case 0: return .ready
            default: return .other
            }
        }
        return .other
    }

    /// The `seq` and `t` integers of a message frame, or `nil` when either is missing.
    ///
    /// The server writes `data` after `id`, `from` and `chan`, which are strings the
    /// benchmark chose (no `"seq":` inside), so the first match is the benchmark's field; the
    /// benchmark writes `{"seq":n,"t":ns}`, so `t` is looked for right after `seq` first.
    @inline(__always)
    static func sequenceAndTime(in payload: UnsafeRawBufferPointer) -> (seq: Int, time: UInt64)? {
        // `q` is rare in a frame, `"` is everywhere: jump between `q`s.
        guard let afterKey = payload.end(of: seqKey, anchoredAt: 3),
            let (seq, afterSeq) = integer(at: afterKey, in: payload)
        else { return nil }
        let time =
            payload.hasBytes(timeFollower, at: afterSeq)
            ? integer(at: afterSeq + timeFollower.count, in: payload)?.value
            : payload.end(of: timeKey, anchoredAt: 1).flatMap { integer(at: $0, in: payload)?.value }
        guard let time else { return nil }
        return (Int(truncatingIfNeeded: seq), time)
    }

    /// The unsigned integer at `start` (after optional spaces) and the index after its digits.
    @inline(__always)
    private static func integer(at start: Int, in bytes: UnsafeRawBufferPointer) -> (value: UInt64, end: Int)? {
        let count = bytes.count
        var position = start
        while position < count && bytes[position] == UInt8(ascii: " ") { position += 1 }
        var value: UInt64 = 0
        let first = position
        while position < count {
            let digit = bytes[position] &- UInt8(ascii: "0")
            guard digit < 10 else { break }
            value = value &* 10 &+ UInt64(digit)
            position += 1
        }
        return position > first ? (value, position) : nil
    }
}
