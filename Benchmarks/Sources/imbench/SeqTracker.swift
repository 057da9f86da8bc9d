/// Which sequence numbers one member received, as a bit set, to count losses and duplicates.
///
/// A member expects the sequence numbers `n` with `n % stride == offset` (a fan-out member
/// expects all of them: stride 1). Anything else is misrouted.
struct SeqTracker {
    private var bits: [UInt64] = []
    /// Distinct expected sequence numbers received.
    private(set) var received = 0
    /// Sequence numbers received more than once (each extra copy counts).
    private(set) var duplicates = 0
    /// Sequence numbers this member should never have received.
    private(set) var misrouted = 0
    private let stride: Int
    private let offset: Int

    /// A tracker for sequence numbers `offset, offset + stride, …`; `stride` 0 tracks nothing.
    init(stride: Int, offset: Int) {
        self.stride = stride
        self.offset = stride > 0 ? offset % stride : 0
    }

    /// Records one received sequence number.
    @inline(__always)
    mutating func record(_ seq: Int) {
        guard stride > 0 else { return }
        guard seq >= 0 else {
            misrouted += 1
            return
        }
        let slot: Int
        if stride == 1 {
            slot = seq
        } else {
            guard seq % stride == offset else {
                misrouted += 1
                return
            }
            slot = seq / stride
        }
        let word = slot >> 6
        if word >= bits.count {
            bits.append(contentsOf: repeatElement(0, count: max(word + 1 - bits.count, bits.count, 16)))
        }
        let mask: UInt64 = 1 << UInt64(slot & 63)
        if bits[word] & mask != 0 {
            duplicates += 1
        } else {
            bits[word] |= mask
            received += 1
        }
    }

    /// Whether sequence number `seq` was received.
    func contains(_ seq: Int) -> Bool {
        guard stride > 0, seq >= 0, seq % stride == offset else { return false }
        let slot = seq / stride
        let word = slot >> 6
        return word < bits.count && bits[word] & (1 << UInt64(slot & 63)) != 0
    }

    /// How many of the sequence numbers `0..<sent` this member expected but did not receive,
    /// not counting `failed` ones (whose send the server refused).
    func lost(sent: Int, failed: [Int]) -> Int {
        guard stride > 0, sent > offset else { return 0 }
        let expectedSlots = (sent - offset + stride - 1) / stride
        var present = 0
        let fullWords = min(expectedSlots >> 6, bits.count)
        for word in 0..<fullWords { present += bits[word].nonzeroBitCount }
        let tail = expectedSlots & 63
        if tail > 0 && fullWords < bits.count && fullWords == expectedSlots >> 6 {
            present += (bits[fullWords] & ((1 << UInt64(tail)) - 1)).nonzeroBitCount
        }
        var excused = 0
        for seq in failed where seq < sent && seq % stride == offset && !contains(seq) { excused += 1 }
        return max(0, expectedSlots - present - excused)
    }
}
