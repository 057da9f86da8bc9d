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

    /// Builds a frame by letting `body` write the JSON payload.
    private init(allocator: ByteBufferAllocator, capacity: Int, body: (inout ByteBuffer) -> Void) {
        var buffer = allocator.buffer(capacity: Self.headerSpace + capacity)
        buffer.moveWriterIndex(forwardBy: Self.headerSpace)
        buffer.moveReaderIndex(forwardBy: Self.headerSpace)
        body(&buffer)
        let length = buffer.readableBytes
        let headerLength = length < 126 ? 2 : (length <= 0xFFFF ? 4 : 10)
        let start = Self.headerSpace - headerLength
        buffer.setInteger(UInt8(0x81), at: start)
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
        self.bytes = buffer
    }

    private init(bytes: ByteBuffer) { self.bytes = bytes }

    /// The same frame in a buffer of its own, so each event loop retains and releases its own
    /// copy instead of every loop bouncing one shared reference count between cores.
    public func copy(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ServerFrame {
        var buffer = allocator.buffer(capacity: bytes.readableBytes)
        buffer.writeImmutableBuffer(bytes)
        return ServerFrame(bytes: buffer)
    }

    /// `{"type":"message","id":…,"from":…,"chan":…,"data":…,"ts":…,"receipt":true}`, with
    /// `"broadcast":true` instead of `chan` for a message to everyone.
    public static func message(
        _ message: Message, wantsReceipt: Bool = false, isBroadcast: Bool = false,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ServerFrame {
        ServerFrame(allocator: allocator, capacity: 96 + message.data.readableBytes) { buffer in
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
        }
    }

    /// `{"type":"receipt","id":…,"to":…,"status":…}`.
    public static func receipt(_ receipt: Receipt, allocator: ByteBufferAllocator = ByteBufferAllocator())
        -> ServerFrame
    {
        ServerFrame(allocator: allocator, capacity: 64) { buffer in
            buffer.writeStaticString(#"{"type":"receipt","id":"#)
            buffer.writeJSONString(receipt.messageID)
            buffer.writeStaticString(#","to":"#)
            buffer.writeJSONString(receipt.receiver.rawValue)
            buffer.writeStaticString(#","status":""#)
            buffer.writeString(receipt.status.name)
            buffer.writeStaticString(#""}"#)
        }
    }

    /// `{"type":"ready","client":…,"node":…}`: the connection is registered and receives messages.
    public static func ready(client: ClientID, node: NodeID, allocator: ByteBufferAllocator = ByteBufferAllocator())
        -> ServerFrame
    {
        ServerFrame(allocator: allocator, capacity: 64) { buffer in
            buffer.writeStaticString(#"{"type":"ready","client":"#)
            buffer.writeJSONString(client.rawValue)
            buffer.writeStaticString(#","node":"#)
            buffer.writeJSONString(node.rawValue)
            buffer.writeStaticString("}")
        }
    }

    /// `{"type":"pong"}`, the answer to a client's `ping`.
    public static let pong = ServerFrame(allocator: ByteBufferAllocator(), capacity: 16) {
        $0.writeStaticString(#"{"type":"pong"}"#)
    }
}
