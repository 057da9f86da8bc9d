import CHiredis
import NIOCore

/// Encodes commands with hiredis's `redisFormatCommandArgv`.
struct RedisCommandEncoder: MessageToByteEncoder {
    typealias OutboundIn = RedisCommand

    func encode(data command: RedisCommand, out: inout ByteBuffer) throws {
        let count = command.arguments.count
        var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
        var lengths = [Int](repeating: 0, count: count)
        defer { for pointer in pointers { pointer?.deallocate() } }
        for (index, argument) in command.arguments.enumerated() {
            let length = argument.readableBytes
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: max(length, 1))
            argument.withUnsafeReadableBytes { bytes in
                if let base = bytes.baseAddress {
                    UnsafeMutableRawPointer(pointer).copyMemory(from: base, byteCount: length)
                }
            }
            pointers[index] = pointer
            lengths[index] = length
        }
        var target: UnsafeMutablePointer<CChar>?
        var argv = pointers.map { $0.map { UnsafePointer($0) } }
        let written = argv.withUnsafeMutableBufferPointer { argv in
            redisFormatCommandArgv(&target, Int32(count), argv.baseAddress, lengths)
        }
        guard written > 0, let target else { throw RedisError.protocolError("could not format \(command.name)") }
        defer { redisFreeCommand(target) }
        out.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(written)))
    }
}

/// Parses replies with hiredis's `redisReader`.
final class RedisReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = RedisValue

    private let reader: UnsafeMutablePointer<redisReader>

    init() throws {
        guard let reader = redisReaderCreate() else { throw RedisError.protocolError("out of memory") }
        self.reader = reader
    }

    deinit { redisReaderFree(reader) }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if buffer.readableBytes > 0 {
            let status = buffer.withUnsafeReadableBytes { bytes in
                redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
            }
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            guard status == REDIS_OK else { throw RedisError.protocolError(readerError) }
        }
        while true {
            var reply: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &reply) == REDIS_OK else { throw RedisError.protocolError(readerError) }
            guard let reply else { return .needMoreData }
            let value = Self.convert(reply.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(reply)
            context.fireChannelRead(wrapInboundOut(value))
        }
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    private var readerError: String {
        withUnsafeBytes(of: reader.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            return .bulk(ByteBuffer(bytes: UnsafeRawBufferPointer(start: value.str, count: Int(value.len))))
        case REDIS_REPLY_STATUS:
            return .status(text(value))
        case REDIS_REPLY_ERROR:
            return .error(text(value))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(value.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(Int(value.elements))
            for index in 0..<Int(value.elements) {
                if let element = value.element[index] { elements.append(convert(element)) }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func text(_ reply: redisReply) -> String {
        guard let pointer = reply.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: Int(reply.len)), as: UTF8.self)
    }
}
