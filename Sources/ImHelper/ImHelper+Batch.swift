public import ImCore

/// One message of a batch sent with ``ImHelper/submit(_:)`` or ``ImHelper/send(_:)``.
public struct OutgoingMessage: Sendable {
    /// Where a message goes.
    public enum Target: Sendable, Equatable {
        /// To these users (duplicates ignored); with `receipt`, the sender's connections get
        /// receipts.
        case users([ClientID], receipt: Bool)
        /// To a channel's members.
        case channel(String)
        /// To every connection of every node.
        case everyone
    }

    /// The body.
    public var data: JSONPayload
    /// Who sends it; `nil` for a broadcast from ``HelperConfiguration/systemSender``.
    public var sender: ClientID?
    /// Where it goes.
    public var target: Target

    /// A message to users.
    public init(_ data: JSONPayload, from sender: ClientID, to receivers: [ClientID], receipt: Bool = false) {
        self.init(data, from: sender, target: .users(receivers, receipt: receipt))
    }

    /// A message to the members of `channel`.
    public init(_ data: JSONPayload, from sender: ClientID, toChannel channel: String) {
        self.init(data, from: sender, target: .channel(channel))
    }

    /// A message to everyone, from `sender` or, when `nil`, ``HelperConfiguration/systemSender``.
    public static func broadcast(_ data: JSONPayload, from sender: ClientID? = nil) -> OutgoingMessage {
        OutgoingMessage(data, from: sender, target: .everyone)
    }

    private init(_ data: JSONPayload, from sender: ClientID?, target: Target) {
        self.data = data
        self.sender = sender
        self.target = target
    }
}

extension ImHelper {
    /// Sends several messages at once (like Pusher's batch trigger) and reports on each.
    ///
    /// Messages to users share one presence lookup, and all of them one publish round trip
    /// (several to one channel travel as one bus message); they keep their order. Returns one
    /// result per message, in order: its id (and, for users, who was offline), or why it was
    /// not sent: a ``HelperError`` for that message alone (an invalid channel name), a
    /// ``BackplaneError`` for the messages of a batch the backplane refused.
    public func submit(_ messages: [OutgoingMessage]) async -> [Result<SendResult, any Error>] {
        guard !messages.isEmpty else { return [] }
        let timestamp = currentTimestamp()
        var results = [Result<SendResult, any Error>?](repeating: nil, count: messages.count)
        var prepared: [SendQueue.Item] = []
        var records: [SentMessage] = []
        var positions: [Int] = []
        prepared.reserveCapacity(messages.count)
        positions.reserveCapacity(messages.count)
        let recording = configuration.onSend != nil
        var lastChannel: ChannelSubject?
        for (position, outgoing) in messages.enumerated() {
            do {
                let (item, record) = try prepare(
                    outgoing, at: timestamp, recording: recording, lastChannel: &lastChannel)
                prepared.append(item)
                if let record { records.append(record) }
                positions.append(position)
            } catch {
                results[position] = .failure(error)
            }
        }
        let sent = await queue.submit(prepared)
        for (position, result) in zip(positions, sent) { results[position] = result }
        if let onSend = configuration.onSend {
            for (record, result) in zip(records, sent) {
                if case .success = result { onSend(record) }
            }
        }
        return results.map { $0 ?? .failure(CancellationError()) }
    }

    /// Sends several messages at once, like ``submit(_:)``; returns their results in order, or
    /// throws the first message's error (the others may have been sent).
    @discardableResult
    public func send(_ messages: [OutgoingMessage]) async throws -> [SendResult] {
        try await submit(messages).map { try $0.get() }
    }

    /// A channel and its subject, validated and made once for a run of messages to it.
    private typealias ChannelSubject = (channel: String, subject: String)

    /// The queue's item for `outgoing`, and, when `recording`, what
    /// ``HelperConfiguration/onSend`` is told of it. `lastChannel` is the channel of the message
    /// before, whose subject a message to the same channel takes as it is.
    private func prepare(
        _ outgoing: OutgoingMessage, at timestamp: Int64, recording: Bool, lastChannel: inout ChannelSubject?
    ) throws(HelperError) -> (SendQueue.Item, SentMessage?) {
        let sender = outgoing.sender ?? configuration.systemSender
        let item: SendQueue.Item
        let target: SentMessage.Target
        let id: String
        switch outgoing.target {
        case .users(let receivers, let receipt):
            var seen = Set<ClientID>()
            let unique = receivers.filter { seen.insert($0).inserted }
            let message = makeMessage(outgoing.data, from: sender, channel: nil, at: timestamp)
            (item, target, id) = (.users(message, receivers: unique, receipt: receipt), .users(unique), message.id)
        case .channel(let channel):
            let subject: String
            if let lastChannel, lastChannel.channel == channel {
                subject = lastChannel.subject
            } else {
                subject = subjects.channel(try validated(channel))
                lastChannel = (channel, subject)
            }
            let message = makeMessage(outgoing.data, from: sender, channel: channel, at: timestamp)
            item = .publish(.channel(message), to: subject, id: message.id)
            (target, id) = (.channel(channel), message.id)
        case .everyone:
            let message = makeMessage(outgoing.data, from: sender, channel: nil, at: timestamp)
            (item, target, id) = (
                .publish(.broadcast(message), to: subjects.broadcast, id: message.id), .everyone, message.id
            )
        }
        guard recording else { return (item, nil) }
        return (item, SentMessage(id: id, sender: sender, target: target, data: outgoing.data))
    }
}
