package import NIOCore

/// Encodes envelopes one at a time into the bytes of one batch, as they come, without keeping
/// them: ``finish()`` returns what `Envelope.batch(items).encoded()` makes, or the lone
/// envelope's own bytes when only one was added (a batch of one is never sent).
package struct EnvelopeBatchEncoder {
    /// Room kept before the first item for the batch's header, written once the count is
    /// known: the version, the kind and the count (a varint of at most 10 bytes).
    private static let headerRoom = 12

    private var buffer: ByteBuffer
    /// How many envelopes were added.
    package private(set) var count = 0

    /// An empty batch whose items are expected to take about `capacity` bytes.
    package init(capacity: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        buffer = allocator.buffer(capacity: Self.headerRoom + capacity)
        buffer.writeRepeatingByte(0, count: Self.headerRoom)
        buffer.moveReaderIndex(forwardBy: Self.headerRoom)
    }

    /// The bytes of the items so far, their lengths included.
    package var byteCount: Int { buffer.readableBytes }

    /// Encodes `envelope` as the batch's next item.
    package mutating func append(_ envelope: Envelope) {
        buffer.writeBatchItem(envelope)
        count += 1
    }

    /// Encodes as the batch's next item the envelope `Envelope.broadcast(message)` (when
    /// `toEveryone`) or `Envelope.channel(message)` makes for the message of these parts,
    /// without making the message (a batch of a thousand channel messages made, copied and
    /// released each only to encode it).
    package mutating func appendMessage(
        toEveryone: Bool, id: String, sender: ClientID, channel: String?, timestamp: Int64, data: ByteBuffer
    ) {
        buffer.writeBatchItem(
            messageToEveryone: toEveryone, id: id, sender: sender, channel: channel, timestamp: timestamp, data: data)
        count += 1
    }

    /// Adds the envelopes of `other`, in order, after this batch's.
    package mutating func append(contentsOf other: EnvelopeBatchEncoder) {
        buffer.writeImmutableBuffer(other.buffer)
        count += other.count
    }

    /// The bytes to publish: the lone envelope when one was added, else the batch. The
    /// encoder is empty afterwards.
    package mutating func finish() -> ByteBuffer {
        defer {
            buffer = ByteBuffer()
            count = 0
        }
        if count == 1 {
            buffer.moveReaderIndex(forwardBy: 4)
            return buffer
        }
        // The header goes into the room kept in front of the items: counted, then written there.
        let items = count
        var counter = ByteCounter()
        Self.writeHeader(count: items, to: &counter)
        buffer.moveReaderIndex(to: buffer.readerIndex - counter.count)
        buffer.withUnsafeMutableReadableBytes { memory in
            var writer = RawBytesWriter(memory)
            Self.writeHeader(count: items, to: &writer)
        }
        return buffer
    }

    /// A batch's header: the format version, the batch kind and the item count.
    private static func writeHeader<Sink: EnvelopeSink>(count: Int, to sink: inout Sink) {
        sink.write(byte: Envelope.formatVersion)
        sink.write(byte: Envelope.batchKind)
        sink.write(length: count)
    }
}
