public import ImCore
public import NIOCore

/// A server-to-client frame, encoded once as complete WebSocket bytes (header and JSON payload)
/// so the same buffer can be written to every receiver.
public struct ServerFrame: Sendable {
    /// The encoded WebSocket frame: an unmasked text frame, FIN set.
    public let bytes: ByteBuffer

    private static let headerSpace = 10

    /// The frame's JSON text without the WebSocket header (a view of the same bytes, no copy),
    /// for transports that frame it their own way.
    public var payload: ByteBuffer {
        let lengthByte = bytes.getInteger(at: bytes.readerIndex + 1, as: UInt8.self) ?? 0
        let headerLength = lengthByte < 126 ? 2 : (lengthByte == 126 ? 4 : 10)
        return bytes.getSlice(at: bytes.readerIndex + headerLength, length: bytes.readableBytes - headerLength)
            ?? ByteBuffer()
    }

    /// The same frame as a binary WebSocket frame in the compact encoding (MessagePack, the
    /// `imserver.v1.msgpack` subprotocol, docs/protocol.md §9), when the node had a connection
    /// that asked for it as the frame was made; `nil` otherwise (such a connection then gets
    /// ``bytes``, which the encoding allows).
    public let compactBytes: ByteBuffer?

    /// Builds a frame by letting `body` write the JSON payload and, with `compact`, `packed`
    /// the MessagePack one. (Both closures are non-escaping: no allocation for their contexts.)
    private init(
        allocator: ByteBufferAllocator, capacity: Int, compact: Bool, body: (inout ByteBuffer) -> Void,
        packed: (inout ByteBuffer) -> Void
    ) {
        self.bytes = Self.webSocketFrame(opcode: 0x81, allocator: allocator, capacity: capacity, body: body)
        self.compactBytes =
            compact ? Self.webSocketFrame(opcode: 0x82, allocator: allocator, capacity: capacity, body: packed) : nil
    }

    /// An unmasked WebSocket frame (FIN set, `opcode`) whose payload `body` writes: the header
    /// is written in front of the payload afterwards, in room left for it, so nothing is copied.
    private static func webSocketFrame(
        opcode: UInt8, allocator: ByteBufferAllocator, capacity: Int, body: (inout ByteBuffer) -> Void
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: Self.headerSpace + capacity)
        buffer.moveWriterIndex(forwardBy: Self.headerSpace)
        buffer.moveReaderIndex(forwardBy: Self.headerSpace)
        body(&buffer)
        let length = buffer.readableBytes
        let headerLength = length < 126 ? 2 : (length <= 0xFFFF ? 4 : 10)
        let start = Self.headerSpace - headerLength
        buffer.setInteger(opcode, at: start)
        switch headerLength {
        case 2:
            buffer.setInteger(UInt8(length), at: start + 1)
        case 4:
            buffer.setInteger(UInt8(126), at: start + 1)
            buffer.setInteger(UInt16(length), at: start + 2)
        default:
            buffer.setInteger(UInt8(127), at: start + 1)
            buffer.setInteger(UInt64(length), at: start + 2)
        }
        buffer.moveReaderIndex(to: start)
        return buffer
    }

    private init(bytes: ByteBuffer, compactBytes: ByteBuffer?) {
        self.bytes = bytes
        self.compactBytes = compactBytes
    }

    /// The same frame in a buffer of its own, so each event loop retains and releases its own
    /// copy instead of every loop bouncing one shared reference count between cores.
    public func copy(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ServerFrame {
        var buffer = allocator.buffer(capacity: bytes.readableBytes)
        buffer.writeImmutableBuffer(bytes)
        let compact = compactBytes.map { bytes in
            var buffer = allocator.buffer(capacity: bytes.readableBytes)
            buffer.writeImmutableBuffer(bytes)
            return buffer
        }
        return ServerFrame(bytes: buffer, compactBytes: compact)
    }

    /// `{"type":"message","id":…,"from":…,"chan":…,"data":…,"ts":…,"receipt":true}`, with
    /// `"broadcast":true` instead of `chan` for a message to everyone.
    /// With `compact`, also `[1, id, from, chan or nil, ts, flags, data]` in MessagePack
    /// (flags: 1 receipt, 2 broadcast; data the message's JSON text as a string).
    public static func message(
        _ message: Message, wantsReceipt: Bool = false, isBroadcast: Bool = false, compact: Bool = false,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ServerFrame {
        ServerFrame(allocator: allocator, capacity: 96 + message.data.readableBytes, compact: compact) { buffer in
            buffer.writeStaticString(#"{"type":"message","id":"#)
            buffer.writeJSONString(message.id)
            buffer.writeStaticString(#","from":"#)
            buffer.writeJSONString(message.sender.rawValue)
            if let channel = message.channel {
                buffer.writeStaticString(#","chan":"#)
                buffer.writeJSONString(channel)
            } else if isBroadcast {
                buffer.writeStaticString(#","broadcast":true"#)
            }
            buffer.writeStaticString(#","data":"#)
            buffer.writeImmutableBuffer(message.data)
            buffer.writeStaticString(#","ts":"#)
            buffer.writeString(String(message.timestamp))
            if wantsReceipt { buffer.writeStaticString(#","receipt":true"#) }
            buffer.writeStaticString("}")
        } packed: { buffer in
            buffer.writeMessagePackArrayHeader(7)
            buffer.writeMessagePackInteger(1)
            buffer.writeMessagePackString(message.id)
            buffer.writeMessagePackString(message.sender.rawValue)
            if let channel = message.channel {
                buffer.writeMessagePackString(channel)
            } else {
                buffer.writeMessagePackNil()
            }
            buffer.writeMessagePackInteger(message.timestamp)
            buffer.writeMessagePackInteger((wantsReceipt ? 1 : 0) | (isBroadcast ? 2 : 0))
            buffer.writeMessagePackString(message.data)
        }
    }

    /// `{"type":"receipt","id":…,"to":…,"status":…}`; with `compact`, also `[2, id, to, status]`.
    public static func receipt(
        _ receipt: Receipt, compact: Bool = false, allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ServerFrame {
        ServerFrame(allocator: allocator, capacity: 64, compact: compact) { buffer in
            buffer.writeStaticString(#"{"type":"receipt","id":"#)
            buffer.writeJSONString(receipt.messageID)
            buffer.writeStaticString(#","to":"#)
            buffer.writeJSONString(receipt.receiver.rawValue)
            buffer.writeStaticString(#","status":""#)
            buffer.writeString(receipt.status.name)
            buffer.writeStaticString(#""}"#)
        } packed: { buffer in
            buffer.writeMessagePackArrayHeader(4)
            buffer.writeMessagePackInteger(2)
            buffer.writeMessagePackString(receipt.messageID)
            buffer.writeMessagePackString(receipt.receiver.rawValue)
            buffer.writeMessagePackString(receipt.status.name)
        }
    }

    /// `{"type":"ready","client":…,"node":…}`: the connection is registered and receives
    /// messages; with `compact`, also `[0, client, node]`.
    public static func ready(
        client: ClientID, node: NodeID, compact: Bool = false, allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ServerFrame {
        ServerFrame(allocator: allocator, capacity: 64, compact: compact) { buffer in
            buffer.writeStaticString(#"{"type":"ready","client":"#)
            buffer.writeJSONString(client.rawValue)
            buffer.writeStaticString(#","node":"#)
            buffer.writeJSONString(node.rawValue)
            buffer.writeStaticString("}")
        } packed: { buffer in
            buffer.writeMessagePackArrayHeader(3)
            buffer.writeMessagePackInteger(0)
            buffer.writeMessagePackString(client.rawValue)
            buffer.writeMessagePackString(node.rawValue)
        }
    }

    /// `{"type":"pong"}`, the answer to a client's `ping`; compact: `[3]`.
    public static let pong = ServerFrame(allocator: ByteBufferAllocator(), capacity: 16, compact: true) {
        $0.writeStaticString(#"{"type":"pong"}"#)
    } packed: { buffer in
        buffer.writeMessagePackArrayHeader(1)
        buffer.writeMessagePackInteger(3)
    }
}
