public import ImCore

/// How an ``ImHelper`` reaches clients and nodes.
public struct HelperConfiguration: Sendable {
    /// The public WebSocket URL clients connect to (`ws://` or `wss://`), without the token;
    /// it is what a browser can reach, independent of node ids.
    public var publicURL: String
    /// Bus subjects; the prefix must match the nodes'.
    public var subjects: Subjects
    /// How long a minted connect token is valid.
    public var tokenLifetime: Duration
    /// How long to wait for nodes to confirm join, leave and force-offline.
    public var commandTimeout: Duration
    /// The name of the sender of broadcasts that name none.
    public var systemSender: ClientID
    /// Called after every send, for auditing (FreeIM's `OnSend`).
    public var onSend: (@Sendable (SentMessage) -> Void)?
    /// Events an ``ImHelper/events(bufferLimit:)`` stream holds for a consumer that does not keep
    /// up; beyond it the oldest are dropped (counted in ``ImHelper/droppedEvents`` and logged).
    public var eventBufferLimit: Int = 10_000

    /// A configuration with the documented defaults.
    public init(
        publicURL: String = "ws://127.0.0.1:6001/ws", subjects: Subjects = Subjects(),
        tokenLifetime: Duration = .seconds(30), commandTimeout: Duration = .seconds(3),
        systemSender: ClientID = "system", onSend: (@Sendable (SentMessage) -> Void)? = nil
    ) {
        self.publicURL = publicURL
        self.subjects = subjects
        self.tokenLifetime = tokenLifetime
        self.commandTimeout = commandTimeout
        self.systemSender = systemSender
        self.onSend = onSend
    }
}

/// What a send did, for the `onSend` audit hook.
public struct SentMessage: Sendable {
    /// Where a message went.
    public enum Target: Sendable, Equatable {
        /// To these users.
        case users([ClientID])
        /// To a channel's members.
        case channel(String)
        /// To everyone.
        case everyone
    }

    /// The message id.
    public var id: String
    /// The sender.
    public var sender: ClientID
    /// The target.
    public var target: Target
    /// The body.
    public var data: JSONPayload
}

/// The outcome of sending to users.
public struct SendResult: Sendable, Equatable, Codable {
    /// The message id (receipts and acks name it).
    public var id: String
    /// Receivers who had no connection anywhere; they did not get the message.
    public var offline: [ClientID]

    /// Describes a send.
    public init(id: String, offline: [ClientID]) {
        self.id = id
        self.offline = offline
    }
}

/// A channel with its counts.
public struct ChannelSummary: Sendable, Equatable, Codable {
    /// The channel's name.
    public var name: String
    /// How many users belong to it.
    public var members: Int
    /// How many of them are online.
    public var online: Int

    /// Describes a channel.
    public init(name: String, members: Int, online: Int) {
        self.name = name
        self.members = members
        self.online = online
    }
}
