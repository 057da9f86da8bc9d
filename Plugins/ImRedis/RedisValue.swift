public import NIOCore

/// One Redis reply, as hiredis parsed it.
public enum RedisValue: Sendable, Equatable {
    /// A status reply such as `OK`.
    case status(String)
    /// An error reply.
    case error(String)
    /// An integer reply.
    case integer(Int)
    /// A bulk string.
    case bulk(ByteBuffer)
    /// A nil bulk string or nil array.
    case null
    /// An array reply.
    case array([RedisValue])

    /// The value as text, for bulk strings and status replies.
    public var string: String? {
        switch self {
        case .bulk(let buffer): String(buffer: buffer)
        case .status(let text): text
        default: nil
        }
    }

    /// The value as an integer, for integer replies (and bulk strings holding one).
    public var int: Int? {
        switch self {
        case .integer(let value): value
        case .bulk(let buffer): Int(String(buffer: buffer))
        default: nil
        }
    }

    /// The elements of an array reply (empty for nil).
    public var array: [RedisValue]? {
        switch self {
        case .array(let values): values
        case .null: []
        default: nil
        }
    }
}

/// A command: its name and arguments, each any bytes.
public struct RedisCommand: Sendable {
    /// Name and arguments, in order.
    public var arguments: [ByteBuffer]

    /// A command from text arguments.
    public init(_ arguments: [String]) {
        self.arguments = arguments.map { ByteBuffer(string: $0) }
    }

    /// A command from a name and byte arguments.
    public init(_ name: String, _ arguments: [ByteBuffer]) {
        self.arguments = [ByteBuffer(string: name)] + arguments
    }

    /// The command's name, for errors and logs.
    public var name: String { arguments.first.map { String(buffer: $0) } ?? "" }
}

/// Why a Redis command failed.
public enum RedisError: Error, Equatable, CustomStringConvertible {
    /// Redis answered with an error reply.
    case server(String)
    /// The reply did not have the expected shape.
    case unexpectedReply(String)
    /// The reply stream could not be parsed.
    case protocolError(String)

    public var description: String {
        switch self {
        case .server(let message): "redis error: \(message)"
        case .unexpectedReply(let detail): "unexpected redis reply: \(detail)"
        case .protocolError(let detail): "redis protocol error: \(detail)"
        }
    }
}
