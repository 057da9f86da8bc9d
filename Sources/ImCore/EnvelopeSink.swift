import NIOCore

/// Where an envelope's bytes go: ``Envelope/write(to:)`` runs twice per envelope, once into a
/// ``ByteCounter`` for its exact size and once into a ``RawBytesWriter`` over memory of that
/// size, so one format description serves both.
///
/// Writing field by field into a `ByteBuffer` checked capacity and exclusivity on every
/// integer and string: a sixth of a 1,000-message batch request went to encoding, most of it to
/// those checks.
protocol EnvelopeSink {
    /// Appends one byte.
    mutating func write(byte: UInt8)
    /// Appends `value`, 8 bytes big-endian.
    mutating func write(int64 value: Int64)
    /// Appends `value`, 4 bytes big-endian.
    mutating func write(uint32 value: UInt32)
    /// Appends the UTF-8 bytes of `text`, without a length.
    mutating func write(utf8 text: String)
    /// Appends the readable bytes of `bytes`.
    mutating func write(bytes: ByteBuffer)
}

extension EnvelopeSink {
    /// A length or count as a base-128 varint (7 bits per byte, low bits first).
    mutating func write(length: Int) {
        var remaining = UInt64(truncatingIfNeeded: length)
        while remaining >= 0x80 {
            write(byte: UInt8(truncatingIfNeeded: remaining) | 0x80)
            remaining >>= 7
        }
        write(byte: UInt8(remaining))
    }

    /// A text field: its length, then its UTF-8 bytes.
    mutating func write(field text: String) {
        write(length: text.utf8.count)
        write(utf8: text)
    }

    /// An optional text field: `0`, or `1` and the field.
    mutating func write(optionalField text: String?) {
        if let text {
            write(byte: 1)
            write(field: text)
        } else {
            write(byte: 0)
        }
    }

    /// A list of text fields: the count, then each.
    mutating func write(list items: [String]) {
        write(length: items.count)
        for item in items { write(field: item) }
    }

    /// A list of client ids: the count, then each as a text field.
    mutating func write(clients: [ClientID]) {
        write(length: clients.count)
        for client in clients { write(field: client.rawValue) }
    }

    /// A message: id, sender, optional channel, timestamp, then the body's length and bytes.
    mutating func write(message: Message) {
        write(
            messageID: message.id, sender: message.sender, channel: message.channel, timestamp: message.timestamp,
            data: message.data)
    }

    /// A message given by its parts, as ``write(message:)`` writes it.
    mutating func write(messageID: String, sender: ClientID, channel: String?, timestamp: Int64, data: ByteBuffer) {
        write(field: messageID)
        write(field: sender.rawValue)
        write(optionalField: channel)
        write(int64: timestamp)
        write(length: data.readableBytes)
        write(bytes: data)
    }
}

/// Counts the bytes an envelope takes.
struct ByteCounter: EnvelopeSink {
    /// The bytes counted so far.
    private(set) var count = 0

    mutating func write(byte: UInt8) { count += 1 }
    mutating func write(int64 value: Int64) { count += 8 }
    mutating func write(uint32 value: UInt32) { count += 4 }
    mutating func write(utf8 text: String) { count += text.utf8.count }
    mutating func write(bytes: ByteBuffer) { count += bytes.readableBytes }
}

/// Writes an envelope's bytes into memory already sized by a ``ByteCounter``.
struct RawBytesWriter: EnvelopeSink {
    private let memory: UnsafeMutableRawBufferPointer
    /// The bytes written so far.
    private(set) var offset = 0

    /// A writer starting at the first byte of `memory`.
    init(_ memory: UnsafeMutableRawBufferPointer) { self.memory = memory }

    mutating func write(byte: UInt8) {
        memory.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
        offset += 1
    }

    mutating func write(int64 value: Int64) {
        memory.storeBytes(of: value.bigEndian, toByteOffset: offset, as: Int64.self)
        offset += 8
    }

    mutating func write(uint32 value: UInt32) {
        memory.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
        offset += 4
    }

    mutating func write(utf8 text: String) {
        // `withUTF8` makes a bridged string contiguous first; a native one is used as it is.
        var text = text
        text.withUTF8 { copy(UnsafeRawBufferPointer($0)) }
    }

    mutating func write(bytes: ByteBuffer) {
        bytes.withUnsafeReadableBytes { copy($0) }
    }

    private mutating func copy(_ source: UnsafeRawBufferPointer) {
        UnsafeMutableRawBufferPointer(rebasing: memory[offset..<offset + source.count]).copyMemory(from: source)
        offset += source.count
    }
}
