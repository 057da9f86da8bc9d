public import NIOCore
import ImBackplane

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

extension BackplaneError {
    /// Redis answered `command` with an error reply (loading, out of memory, a read-only
    /// replica, a busy script…): the backend refuses to serve it now.
    static func redisRefused(_ command: String, _ message: String) -> BackplaneError {
        .unavailable("redis refused \(command): \(message)")
    }
}
