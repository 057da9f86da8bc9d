public import NIOCore

/// What ImServer processes say to each other over the ``Bus``.
///
/// Encoded by ``Envelope/encode(into:)`` in a compact, versioned binary form and decoded by
/// ``Envelope/init(decoding:)``, which throws ``EnvelopeDecodingError`` for anything malformed.
public enum Envelope: Sendable, Equatable {
    /// A message for some users connected to the node whose subject it is published on.
    case delivery(Delivery)
    /// A message for the members of a channel (published on the channel's subject).
    case channel(Message)
    /// A message for every connection (published on the broadcast subject).
    case broadcast(Message)
    /// A receipt for the sender's connections on the node whose subject it is published on.
    case receipt(Receipt)
    /// An instruction for one node; the node confirms it to `reply` once applied.
    case command(NodeCommand, reply: ReplyAddress?)
    /// A node's confirmation that the command with this request id was applied.
    case reply(requestID: String)
    /// A user came online or went offline.
    case event(PresenceEvent)
    /// Several envelopes for the same subject, in order, in one bus message (never nested).
    /// Helpers send concurrent deliveries to one node this way.
    case batch([Envelope])
}

/// A message as it travels: who sent it, when, and its JSON body.
public struct Message: Sendable, Equatable {
    /// The message id, unique per message (receipts and acks name it).
    public var id: String
    /// Who sent it.
    public var sender: ClientID
    /// The channel it was sent to, for channel messages.
    public var channel: String?
    /// Milliseconds since 1970 when the helper accepted it.
    public var timestamp: Int64
    /// The message body: one valid JSON value, as UTF-8 bytes.
    public var data: ByteBuffer

    /// Describes a message.
    public init(id: String, sender: ClientID, channel: String? = nil, timestamp: Int64, data: ByteBuffer) {
        self.id = id
        self.sender = sender
        self.channel = channel
        self.timestamp = timestamp
        self.data = data
    }
}

/// A message for some users on one node, with what the node needs to send receipts.
public struct Delivery: Sendable, Equatable {
    /// The message.
    public var message: Message
    /// The users on the target node who should get it.
    public var receivers: [ClientID]
    /// The receivers this node reports receipts for (`delivered`, `offline`, `acked`); each
    /// receiver is reported by exactly one node, so a user on two nodes gets one receipt.
    public var receiptFor: [ClientID]
    /// The nodes the sender is connected to, where receipts go.
    public var senderNodes: [NodeID]

    /// Describes a delivery.
    public init(message: Message, receivers: [ClientID], receiptFor: [ClientID] = [], senderNodes: [NodeID] = []) {
        self.message = message
        self.receivers = receivers
        self.receiptFor = receiptFor
        self.senderNodes = senderNodes
    }

    /// Whether the sender asked for receipts.
    public var wantsReceipt: Bool { !receiptFor.isEmpty }
}

/// What happened to a message sent to one receiver.
public struct Receipt: Sendable, Equatable {
    /// What a receipt reports.
    public enum Status: UInt8, Sendable, Equatable, CaseIterable {
        /// Written to at least one of the receiver's connections.
        case delivered = 1
        /// The receiver had no connection.
        case offline = 2
        /// The receiver's client acknowledged it.
        case acked = 3

        /// The name used on the wire to clients.
        public var name: String {
            switch self {
            case .delivered: "delivered"
            case .offline: "offline"
            case .acked: "acked"
            }
        }
    }

    /// The message the receipt is about.
    public var messageID: String
    /// The message's sender, whose connections get the receipt.
    public var sender: ClientID
    /// The receiver the receipt is about.
    public var receiver: ClientID
    /// What happened.
    public var status: Status

    /// Describes a receipt.
    public init(messageID: String, sender: ClientID, receiver: ClientID, status: Status) {
        self.messageID = messageID
        self.sender = sender
        self.receiver = receiver
        self.status = status
    }
}

/// Where a node confirms a command: a subject and the request's id.
public struct ReplyAddress: Sendable, Equatable {
    /// The subject the requester listens on.
    public var subject: String
    /// The id the requester matches confirmations with.
    public var requestID: String

    /// Describes a reply address.
    public init(subject: String, requestID: String) {
        self.subject = subject
        self.requestID = requestID
    }
}

/// An instruction from a helper to a node about users connected there.
public enum NodeCommand: Sendable, Equatable {
    /// The user joined channels: start delivering their messages to the user's connections.
    case join(ClientID, channels: [String])
    /// The user left channels: stop delivering their messages to the user.
    case leave(ClientID, channels: [String])
    /// Close every connection of the user on the node with code 4003.
    case forceOffline(ClientID)
}

/// A user coming online (first connection in the cluster) or going offline (last one closed).
public struct PresenceEvent: Sendable, Equatable, Codable {
    /// Online or offline.
    public enum Kind: UInt8, Sendable, Equatable, Codable {
        /// The user's first connection opened.
        case online = 1
        /// The user's last connection closed.
        case offline = 2

        /// `online` or `offline`.
        public var name: String {
            switch self {
            case .online: "online"
            case .offline: "offline"
            }
        }
    }

    /// Online or offline.
    public var kind: Kind
    /// The user.
    public var client: ClientID
    /// The node that saw it happen (or held the user when it was reaped).
    public var node: NodeID
    /// The `meta` claim of the token of the connection concerned.
    public var meta: String?
    /// Milliseconds since 1970 when it happened.
    public var timestamp: Int64

    /// Describes an event.
    public init(kind: Kind, client: ClientID, node: NodeID, meta: String?, timestamp: Int64) {
        self.kind = kind
        self.client = client
        self.node = node
        self.meta = meta
        self.timestamp = timestamp
    }
}
