#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension UnsafeRawBufferPointer {
    /// Where the first occurrence of `key` ends, or `nil`. Candidates are found with `memchr`
    /// (vectorised) for `key[anchor]`, so anchor on a byte that is rare in the text.
    func end(of key: [UInt8], anchoredAt anchor: Int) -> Int? {
        guard let base = baseAddress, count >= key.count else { return nil }
        let last = count - key.count + anchor  // the anchor's last possible position
        var from = anchor
        while from <= last, let hit = memchr(base + from, Int32(key[anchor]), last + 1 - from) {
            let start = base.distance(to: UnsafeRawPointer(hit)) - anchor
            if hasBytes(key, at: start) { return start + key.count }
            from = start + anchor + 1
        }
        return nil
    }

    /// The index of the first `byte`, or `nil` (`memchr`).
    func firstIndex(ofByte byte: UInt8) -> Int? {
        guard let base = baseAddress, let hit = memchr(base, Int32(byte), count) else { return nil }
        return base.distance(to: UnsafeRawPointer(hit))
    }

    /// Whether `key` is at `start`.
    @inline(__always)
    func hasBytes(_ key: [UInt8], at start: Int) -> Bool {
        guard start >= 0, start + key.count <= count else { return false }
        for offset in 0..<key.count where self[start + offset] != key[offset] { return false }
        return true
    }
}
