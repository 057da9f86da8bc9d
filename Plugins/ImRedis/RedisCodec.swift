import CHiredis
import ImBackplane
import NIOCore

extension RedisCommand {
    /// Appends the command in RESP, formatted by hiredis's `redisFormatCommandArgv`.
    func encode(into out: inout ByteBuffer) throws(BackplaneError) {
        let count = arguments.count
        var lengths = [Int](repeating: 0, count: count)
        var joined: [UInt8] = []
        joined.reserveCapacity(arguments.reduce(0) { $0 + $1.readableBytes })
        for (index, argument) in arguments.enumerated() {
            lengths[index] = argument.readableBytes
            joined.append(contentsOf: argument.readableBytesView)
        }
        var target: UnsafeMutablePointer<CChar>?
        let written = joined.withUnsafeBufferPointer { bytes in
            // hiredis reads each argument through argv; they lie end to end in `joined`.
            guard let start = bytes.baseAddress else { return Int32(-1) }
            let base = UnsafeRawPointer(start)
            var offset = 0
            var argv: [UnsafePointer<CChar>?] = lengths.map { length in
                defer { offset += length }
                return (base + offset).assumingMemoryBound(to: CChar.self)
            }
            return argv.withUnsafeMutableBufferPointer { argv in
                redisFormatCommandArgv(&target, Int32(count), argv.baseAddress, lengths)
            }
        }
        guard written > 0, let target else {
            throw BackplaneError.protocolViolation("hiredis could not format the command \(name)")
        }
        defer { redisFreeCommand(target) }
        out.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(written)))
    }
}

/// Parses replies with hiredis's `redisReader`.
final class RedisReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = RedisValue

    private let reader: UnsafeMutablePointer<redisReader>

    init() throws {
        guard let reader = redisReaderCreate() else {
            throw BackplaneError.unavailable("hiredis could not allocate a reply reader")
        }
        self.reader = reader
    }

    deinit { redisReaderFree(reader) }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if buffer.readableBytes > 0 {
            let status = buffer.withUnsafeReadableBytes { bytes in
                redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
            }
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            guard status == REDIS_OK else {
                throw BackplaneError.protocolViolation("unreadable redis reply: \(readerError)")
            }
        }
        while true {
            var reply: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &reply) == REDIS_OK else {
                throw BackplaneError.protocolViolation("unreadable redis reply: \(readerError)")
            }
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
