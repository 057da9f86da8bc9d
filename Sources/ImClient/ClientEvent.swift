public import Foundation

/// What an ``ImClient`` reports, in order, on ``ImClient/events``.
public enum ClientEvent: Sendable {
    /// The server registered the connection: messages flow from now on.
    case ready(client: String, node: String)
    /// A message for this user, a channel of theirs, or everyone.
    case message(IncomingMessage)
    /// A receipt about a message this user sent with `receipt: true`.
    case receipt(IncomingReceipt)
    /// The connection ended; `retryIn` is when the client tries again (`nil`: it stopped, after
    /// ``ImClient/close()`` or a final close code such as 4003, forced offline). `code` is the
    /// WebSocket close code when the server sent one (docs/protocol.md §5).
    case disconnected(code: UInt16?, reason: String, retryIn: Duration?)
}

/// A `message` frame (docs/protocol.md §2).
public struct IncomingMessage: Sendable, Equatable {
    /// Who a message was sent to.
    public enum Kind: Sendable, Equatable {
        /// To this user.
        case direct
        /// To a channel of this user's (``IncomingMessage/channel`` names it).
        case channel
        /// To everyone.
        case broadcast
    }

    /// The message id; receipts and acks name it.
    public var id: String
    /// The sender's client id (`system` for broadcasts sent without one).
    public var from: String
    /// The channel, for channel messages.
    public var channel: String?
    /// Who it was sent to.
    public var kind: Kind
    /// The body: the JSON text the back-end sent, byte for byte.
    public var data: Data
    /// When the back-end's helper accepted it (milliseconds since 1970).
    public var timestamp: Int64
    /// Whether the sender asked for receipts (the client acknowledges it by itself).
    public var wantsReceipt: Bool

    /// The body decoded as `type`.
    public func decode<Value: Decodable>(_ type: Value.Type, using decoder: JSONDecoder = JSONDecoder()) throws
        -> Value
    {
        try decoder.decode(type, from: data)
    }

    /// The body as JSON text.
    public var json: String { String(decoding: data, as: UTF8.self) }
}

/// A `receipt` frame (docs/protocol.md §2).
public struct IncomingReceipt: Sendable, Equatable {
    /// What became of the message for one receiver.
    public enum Status: String, Sendable, Equatable {
        /// The receiver had no connection that took it.
        case offline
        /// A connection of the receiver took it.
        case delivered
        /// A connection of the receiver acknowledged it.
        case acked
    }

    /// The message's id.
    public var id: String
    /// The receiver this receipt is about.
    public var to: String
    /// What happened.
    public var status: Status
}
