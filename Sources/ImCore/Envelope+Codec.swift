public import NIOCore

/// Why bytes from the bus are not a valid ``Envelope``.
public enum EnvelopeDecodingError: Error, Equatable, CustomStringConvertible {
    /// The first byte names a format version this build does not read.
    case unsupportedVersion(UInt8)
    /// The kind byte is not one this version defines.
    case unknownKind(UInt8)
    /// The bytes ended in the middle of a field.
    case truncated(field: String)
    /// A length is larger than the bytes left or than the format allows.
    case invalidLength(field: String)
    /// A text field is not UTF-8.
    case invalidText(field: String)
    /// A field holds a value the format does not define.
    case invalidValue(field: String)
    /// Bytes are left over after a complete envelope.
    case trailingBytes(Int)

    public var description: String {
        switch self {
        case .unsupportedVersion(let version):
            "envelope version \(version) is not supported (expected \(Envelope.formatVersion))"
        case .unknownKind(let kind): "unknown envelope kind \(kind)"
        case .truncated(let field): "envelope ends inside field '\(field)'"
        case .invalidLength(let field): "envelope field '\(field)' has an invalid length"
        case .invalidText(let field): "envelope field '\(field)' is not UTF-8"
        case .invalidValue(let field): "envelope field '\(field)' has an invalid value"
        case .trailingBytes(let count): "\(count) unexpected bytes after the envelope"
        }
    }
}

/// The envelope's binary format and how it is versioned.
///
/// Every envelope starts with two bytes: the format version (``Envelope/formatVersion``), then
/// the kind. Then the kind's fields: texts as a length (unsigned LEB128) and UTF-8 bytes, an
/// optional text as a `0`/`1` byte before it, lists as a count and their items, timestamps as
/// 8-byte big-endian integers, a message's body as a length and its bytes; a batch is a count
/// of items, each a 4-byte big-endian length and a whole envelope (never a batch).
///
/// Format version 1 kinds: 1 delivery, 2 channel, 3 broadcast, 4 receipt, 5 join, 6 leave,
/// 7 force offline, 8 event, 9 reply, 10 batch (added later within version 1).
///
/// Rules that keep a rolling upgrade safe (nodes and helpers of two builds share one bus):
/// - **A reader never crashes on what it cannot read.** An envelope with a version or kind
///   this build does not know, or malformed bytes, throws ``EnvelopeDecodingError``; a node
///   drops it, logs it and counts it (`imserver_malformed_envelopes_total`), and a helper skips
///   it. So a new kind costs the old readers only that message.
/// - **Adding a kind keeps the version.** Old readers drop it as an unknown kind; a sender must
///   not rely on it until every reader of the cluster knows it (as with `batch`: a build
///   from before it drops batches).
/// - **Changing an existing kind's fields needs a new version**, because an old reader would
///   misread the bytes instead of refusing them. A build that writes version N+1 must still
///   read version N, so it can run beside the older build during the upgrade.
/// - Bytes written by earlier builds are pinned by `EnvelopeCompatibilityTests`: they must
///   keep decoding to the same envelopes, and encoding must keep producing them.
extension Envelope {
    /// The binary format version written in every envelope's first byte (see the rules above).
    public static let formatVersion: UInt8 = 1

    /// The kind byte after the version. Values are never reused or renumbered.
    private enum Kind: UInt8 {
        case delivery = 1
        case channel, broadcast, receipt, join, leave, forceOffline, event, reply, batch
    }

    /// The kind byte of a batch, for ``EnvelopeBatchEncoder``.
    static var batchKind: UInt8 { Kind.batch.rawValue }

    /// The envelope's bytes.
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64 + payloadSize)
        encode(into: &buffer)
        return buffer
    }

    /// About how many bytes ``encoded(allocator:)`` makes, less a few dozen of framing.
    package var payloadSize: Int {
        switch self {
        case .delivery(let delivery): delivery.message.data.readableBytes + 16 * delivery.receivers.count
        case .channel(let message), .broadcast(let message): message.data.readableBytes
        case .batch(let items): items.reduce(0) { $0 + 64 + $1.payloadSize }
        default: 0
        }
    }

    /// Appends the envelope's bytes to `buffer`.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.write(exactly: byteCount) { write(to: &$0) }
    }

    /// How many bytes ``encode(into:)`` writes.
    var byteCount: Int {
        var counter = ByteCounter()
        write(to: &counter)
        return counter.count
    }

    /// Writes the envelope's bytes: the format above, in one place for counting and writing.
    func write<Sink: EnvelopeSink>(to sink: inout Sink) {
        sink.write(byte: Self.formatVersion)
        switch self {
        case .delivery(let delivery):
            sink.write(byte: Kind.delivery.rawValue)
            sink.write(message: delivery.message)
            sink.write(clients: delivery.receivers)
            sink.write(clients: delivery.receiptFor)
            sink.write(length: delivery.senderNodes.count)
            for node in delivery.senderNodes { sink.write(field: node.rawValue) }
        case .channel(let message), .broadcast(let message):
            let toEveryone = if case .broadcast = self { true } else { false }
            Self.writeMessage(
                toEveryone: toEveryone, id: message.id, sender: message.sender, channel: message.channel,
                timestamp: message.timestamp, data: message.data, to: &sink)
        case .receipt(let receipt):
            sink.write(byte: Kind.receipt.rawValue)
            sink.write(field: receipt.messageID)
            sink.write(field: receipt.sender.rawValue)
            sink.write(field: receipt.receiver.rawValue)
            sink.write(byte: receipt.status.rawValue)
        case .command(let command, let reply):
            switch command {
            case .join(let user, let channels):
                sink.write(byte: Kind.join.rawValue)
                sink.write(field: user.rawValue)
                sink.write(list: channels)
            case .leave(let user, let channels):
                sink.write(byte: Kind.leave.rawValue)
                sink.write(field: user.rawValue)
                sink.write(list: channels)
            case .forceOffline(let user):
                sink.write(byte: Kind.forceOffline.rawValue)
                sink.write(field: user.rawValue)
            }
            sink.write(optionalField: reply?.subject)
            sink.write(optionalField: reply?.requestID)
        case .reply(let requestID):
            sink.write(byte: Kind.reply.rawValue)
            sink.write(field: requestID)
        case .event(let event):
            sink.write(byte: Kind.event.rawValue)
            sink.write(byte: event.kind.rawValue)
            sink.write(field: event.client.rawValue)
            sink.write(field: event.node.rawValue)
            sink.write(optionalField: event.meta)
            sink.write(int64: event.timestamp)
        case .batch(let items):
            sink.write(byte: Kind.batch.rawValue)
            sink.write(length: items.count)
            for item in items { sink.write(batchItem: item) }
        }
    }

    /// A channel envelope's kind and message (or, `toEveryone`, a broadcast's), from the
    /// message's parts: ``EnvelopeBatchEncoder/appendMessage(toEveryone:id:sender:channel:timestamp:data:)``
    /// writes it without making the message.
    fileprivate static func writeMessage<Sink: EnvelopeSink>(
        toEveryone: Bool, id: String, sender: ClientID, channel: String?, timestamp: Int64, data: ByteBuffer,
        to sink: inout Sink
    ) {
        sink.write(byte: (toEveryone ? Kind.broadcast : Kind.channel).rawValue)
        sink.write(messageID: id, sender: sender, channel: channel, timestamp: timestamp, data: data)
    }

    /// Decodes one envelope that fills `buffer` exactly.
    public init(decoding buffer: ByteBuffer) throws(EnvelopeDecodingError) {
        var reader = buffer
        guard let version = reader.readInteger(as: UInt8.self) else { throw .truncated(field: "version") }
        guard version == Self.formatVersion else { throw .unsupportedVersion(version) }
        guard let kindByte = reader.readInteger(as: UInt8.self) else { throw .truncated(field: "kind") }
        guard let kind = Kind(rawValue: kindByte) else { throw .unknownKind(kindByte) }
        switch kind {
        case .delivery:
            let message = try reader.readMessage()
            let receivers = try reader.readList("receivers").map(ClientID.init(rawValue:))
            let receiptFor = try reader.readList("receiptFor").map(ClientID.init(rawValue:))
            let nodes = try reader.readList("senderNodes").map(NodeID.init(rawValue:))
            self = .delivery(
                Delivery(message: message, receivers: receivers, receiptFor: receiptFor, senderNodes: nodes))
        case .channel:
            let message = try reader.readMessage()
            guard message.channel != nil else { throw .invalidValue(field: "channel") }
            self = .channel(message)
        case .broadcast:
            self = .broadcast(try reader.readMessage())
        case .receipt:
            let id = try reader.readField("messageID")
            let sender = try reader.readField("sender")
            let receiver = try reader.readField("receiver")
            let statusByte = try reader.readByte("status")
            guard let status = Receipt.Status(rawValue: statusByte) else { throw .invalidValue(field: "status") }
            self = .receipt(
                Receipt(
                    messageID: id, sender: ClientID(rawValue: sender),
                    receiver: ClientID(rawValue: receiver), status: status))
        case .join, .leave, .forceOffline:
            let user = ClientID(rawValue: try reader.readField("user"))
            let command: NodeCommand
            switch kind {
            case .join: command = .join(user, channels: try reader.readList("channels"))
            case .leave: command = .leave(user, channels: try reader.readList("channels"))
            default: command = .forceOffline(user)
            }
            let subject = try reader.readOptionalField("replySubject")
            let requestID = try reader.readOptionalField("requestID")
            switch (subject, requestID) {
            case (let subject?, let requestID?):
                self = .command(command, reply: ReplyAddress(subject: subject, requestID: requestID))
            case (nil, nil):
                self = .command(command, reply: nil)
            default:
                throw .invalidValue(field: "reply")
            }
        case .reply:
            self = .reply(requestID: try reader.readField("requestID"))
        case .event:
            let kindByte = try reader.readByte("event")
            guard let eventKind = PresenceEvent.Kind(rawValue: kindByte) else { throw .invalidValue(field: "event") }
            let client = try reader.readField("client")
            let node = try reader.readField("node")
            let meta = try reader.readOptionalField("meta")
            guard let timestamp = reader.readInteger(as: Int64.self) else { throw .truncated(field: "timestamp") }
            self = .event(
                PresenceEvent(
                    kind: eventKind, client: ClientID(rawValue: client),
                    node: NodeID(rawValue: node), meta: meta, timestamp: timestamp))
        case .batch:
            let count = try reader.readLength("batch")
            guard count <= reader.readableBytes else { throw .invalidLength(field: "batch") }
            var items: [Envelope] = []
            items.reserveCapacity(count)
            for _ in 0..<count {
                guard let length = reader.readInteger(as: UInt32.self) else { throw .truncated(field: "batch") }
                guard let slice = reader.readSlice(length: Int(length)) else { throw .truncated(field: "batch") }
                // A batch inside a batch is refused before it is decoded: decoding it first would
                // recurse once per level, and a few hundred thousand nested headers overflow the stack.
                if slice.getInteger(at: slice.readerIndex, as: UInt8.self) == Self.formatVersion,
                    slice.getInteger(at: slice.readerIndex + 1, as: UInt8.self) == Kind.batch.rawValue
                {
                    throw .invalidValue(field: "batch")
                }
                let item = try Envelope(decoding: slice)
                items.append(item)
            }
            self = .batch(items)
        }
        guard reader.readableBytes == 0 else { throw .trailingBytes(reader.readableBytes) }
    }
}

/// The largest length any one field may declare (64 MiB).
private let maximumFieldLength = 64 << 20

extension EnvelopeSink {
    /// `item` as a batch's item: its 4-byte length, then the envelope.
    mutating func write(batchItem item: Envelope) {
        write(uint32: UInt32(truncatingIfNeeded: item.byteCount))
        item.write(to: &self)
    }
}

extension ByteBuffer {
    /// Writes `item` as a batch's item: its 4-byte length, then the envelope.
    mutating func writeBatchItem(_ item: Envelope) {
        let count = item.byteCount
        write(exactly: 4 + count) { writer in
            writer.write(uint32: UInt32(truncatingIfNeeded: count))
            item.write(to: &writer)
        }
    }

    /// Writes as a batch's item the envelope `Envelope.broadcast(message)` (when `toEveryone`)
    /// or `Envelope.channel(message)` makes, for the message of these parts, without the message.
    mutating func writeBatchItem(
        messageToEveryone toEveryone: Bool, id: String, sender: ClientID, channel: String?, timestamp: Int64,
        data: ByteBuffer
    ) {
        func writeEnvelope(to sink: inout some EnvelopeSink) {
            sink.write(byte: Envelope.formatVersion)
            Envelope.writeMessage(
                toEveryone: toEveryone, id: id, sender: sender, channel: channel, timestamp: timestamp, data: data,
                to: &sink)
        }
        var counter = ByteCounter()
        writeEnvelope(to: &counter)
        write(exactly: 4 + counter.count) { writer in
            writer.write(uint32: UInt32(truncatingIfNeeded: counter.count))
            writeEnvelope(to: &writer)
        }
    }

    /// Writes the `count` bytes that `body` writes, in one piece: one capacity and access check
    /// for all of them. `count` must be what a ``ByteCounter`` counted for the same writes.
    fileprivate mutating func write(exactly count: Int, _ body: (inout RawBytesWriter) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: count) { memory in
            var writer = RawBytesWriter(memory)
            body(&writer)
            assert(writer.offset == count, "counted \(count) bytes, wrote \(writer.offset)")
            return writer.offset
        }
    }

    fileprivate mutating func readByte(_ field: String) throws(EnvelopeDecodingError) -> UInt8 {
        guard let byte = readInteger(as: UInt8.self) else { throw .truncated(field: field) }
        return byte
    }

    fileprivate mutating func readLength(_ field: String) throws(EnvelopeDecodingError) -> Int {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard let byte = readInteger(as: UInt8.self) else { throw .truncated(field: field) }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
            guard shift < 35 else { throw .invalidLength(field: field) }
        }
        guard value <= UInt64(maximumFieldLength) else { throw .invalidLength(field: field) }
        return Int(value)
    }

    fileprivate mutating func readField(_ field: String) throws(EnvelopeDecodingError) -> String {
        let length = try readLength(field)
        guard length <= readableBytes else { throw .truncated(field: field) }
        guard let text = readValidText(length: length) else { throw .invalidText(field: field) }
        return text
    }

    fileprivate mutating func readValidText(length: Int) -> String? {
        guard let bytes = readSlice(length: length) else { return nil }
        return bytes.withUnsafeReadableBytes { String(validating: $0, as: UTF8.self) }
    }

    fileprivate mutating func readOptionalField(_ field: String) throws(EnvelopeDecodingError) -> String? {
        switch try readByte(field) {
        case 0: return nil
        case 1: return try readField(field)
        default: throw .invalidValue(field: field)
        }
    }

    fileprivate mutating func readList(_ field: String) throws(EnvelopeDecodingError) -> [String] {
        let count = try readLength(field)
        guard count <= readableBytes else { throw .invalidLength(field: field) }
        var items: [String] = []
        items.reserveCapacity(count)
        for _ in 0..<count { items.append(try readField(field)) }
        return items
    }

    fileprivate mutating func readMessage() throws(EnvelopeDecodingError) -> Message {
        let id = try readField("id")
        let sender = try readField("sender")
        let channel = try readOptionalField("channel")
        guard let timestamp = readInteger(as: Int64.self) else { throw .truncated(field: "timestamp") }
        let length = try readLength("data")
        guard let data = readSlice(length: length) else { throw .truncated(field: "data") }
        return Message(id: id, sender: ClientID(rawValue: sender), channel: channel, timestamp: timestamp, data: data)
    }
}
