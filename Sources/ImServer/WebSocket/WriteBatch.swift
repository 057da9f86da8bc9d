import NIOCore

/// The frames written to one connection since its last flush, gathered into one buffer so the
/// flush hands the channel one contiguous write instead of one pipeline write per frame.
///
/// The first frame is kept as the shared, already encoded buffer (no copy: a connection that
/// gets one message per flush costs what it did before); a second frame starts a buffer of
/// the connection's own and both are copied into it. A copy of a short frame is cheaper than
/// a pipeline write, a pending-write entry and an iovec for it, and the kernel then copies one
/// region per flush instead of one per frame. Empty between flushes, so idle connections
/// hold no buffer.
struct WriteBatch {
    private var buffer: ByteBuffer?
    private var isOwned = false

    /// How many bytes are waiting.
    var byteCount: Int { buffer?.readableBytes ?? 0 }

    /// Adds `frame`'s bytes after what is waiting.
    mutating func append(_ frame: ByteBuffer, allocator: ByteBufferAllocator) {
        guard var current = buffer else {
            buffer = frame
            isOwned = false
            return
        }
        buffer = nil  // `current` is now the only reference, so the write below does not copy.
        if !isOwned {
            var own = allocator.buffer(capacity: max(4 * (current.readableBytes + frame.readableBytes), 1024))
            own.writeImmutableBuffer(current)
            current = own
            isOwned = true
        }
        current.writeImmutableBuffer(frame)
        buffer = current
    }

    /// Returns what is waiting and empties the batch.
    mutating func take() -> ByteBuffer? {
        defer {
            buffer = nil
            isOwned = false
        }
        return buffer
    }
}
