#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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
    private static let timeFollower = Array(#","t":"#.utf8)

    /// The kind of a text frame's payload.
    @inline(__always)
    static func kind(of payload: UnsafeRawBufferPointer) -> Kind {
        if hasBytes(messagePrefix, at: 0, in: payload) { return .message }
        if hasBytes(readyPrefix, at: 0, in: payload) { return .ready }
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
        guard let afterKey = end(of: seqKey, anchoredAt: 3, in: payload),
              let (seq, afterSeq) = integer(at: afterKey, in: payload)
        else { return nil }
        let time = hasBytes(timeFollower, at: afterSeq, in: payload)
            ? integer(at: afterSeq + timeFollower.count, in: payload)?.value
            : end(of: timeKey, anchoredAt: 1, in: payload).flatMap { integer(at: $0, in: payload)?.value }
        guard let time else { return nil }
        return (Int(truncatingIfNeeded: seq), time)
    }

    /// Where the first occurrence of `key` ends; candidates are found with `memchr` (vectorised)
    /// for `key[anchor]`, so choose a byte that is rare in the text.
    private static func end(of key: [UInt8], anchoredAt anchor: Int, in bytes: UnsafeRawBufferPointer) -> Int? {
        guard let base = bytes.baseAddress, bytes.count >= key.count else { return nil }
        let last = bytes.count - key.count + anchor  // the anchor's last possible position
        var from = anchor
        while from <= last, let hit = memchr(base + from, Int32(key[anchor]), last + 1 - from) {
            let start = base.distance(to: UnsafeRawPointer(hit)) - anchor
            if hasBytes(key, at: start, in: bytes) { return start + key.count }
            from = start + anchor + 1
        }
        return nil
    }

    @inline(__always)
    private static func hasBytes(_ key: [UInt8], at start: Int, in bytes: UnsafeRawBufferPointer) -> Bool {
        guard start >= 0, start + key.count <= bytes.count else { return false }
        for offset in 0..<key.count where bytes[start + offset] != key[offset] { return false }
        return true
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
