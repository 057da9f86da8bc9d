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
        var batch = prepared(messages)
        let outcomes = await queue.submit(batch.finishItems())
        return batch.results(of: outcomes, onSend: configuration.onSend)
    }

    /// Sends several messages at once like ``submit(_:)``, and calls `completion` with their
    /// results instead of returning them: for a caller on an event loop, which must not wait
    /// (the server API answers a single send from its connection's loop). `completion` runs
    /// once, on the thread that finished the last publish.
    ///
    /// The results are copied once on their way to `completion`; a large batch costs less
    /// through ``submit(_:)``.
    public func submit(
        _ messages: [OutgoingMessage], completion: @escaping @Sendable ([Result<SendResult, any Error>]) -> Void
    ) {
        guard !messages.isEmpty else { return completion([]) }
        var batch = prepared(messages)
        let items = batch.finishItems()
        let onSend = configuration.onSend
        queue.submit(items) { [batch] outcomes in completion(batch.results(of: outcomes, onSend: onSend)) }
    }

    /// `messages` made into the send queue's items.
    private func prepared(_ messages: [OutgoingMessage]) -> PreparedBatch {
        let timestamp = currentTimestamp()
        var batch = PreparedBatch(count: messages.count, recording: configuration.onSend != nil)
        // By index: each message is read where it lies instead of copied out first.
        for position in messages.indices {
            do {
                try prepare(messages[position], at: position, timestamp: timestamp, into: &batch)
            } catch {
                batch.refuse(position, error)
            }
        }
        return batch
    }

    /// Sends several messages at once, like ``submit(_:)``; returns their results in order, or
    /// throws the first message's error (the others may have been sent).
    @discardableResult
    public func send(_ messages: [OutgoingMessage]) async throws -> [SendResult] {
        try await submit(messages).map { try $0.get() }
    }

    /// Adds `outgoing`, the message at `position`, to `batch`.
    private func prepare(
        _ outgoing: OutgoingMessage, at position: Int, timestamp: Int64, into batch: inout PreparedBatch
    ) throws(HelperError) {
        let sender = outgoing.sender ?? configuration.systemSender
        let id: String
        let target: SentMessage.Target
        switch outgoing.target {
        case .users(let receivers, let receipt):
            var seen = Set<ClientID>()
            let unique = receivers.filter { seen.insert($0).inserted }
            let message = makeMessage(outgoing.data, from: sender, channel: nil, at: timestamp)
            batch.add(.users(message, receivers: unique, receipt: receipt), id: message.id, at: position)
            (id, target) = (message.id, .users(unique))
        case .channel(let channel):
            let subject = try batch.subject(of: channel) { channel throws(HelperError) in
                subjects.channel(try validated(channel))
            }
            id = messageIDs.next()
            batch.publish(
                toEveryone: false, id: id, sender: sender, channel: channel, timestamp: timestamp,
                data: outgoing.data.bytes, to: subject, at: position)
            target = .channel(channel)
        case .everyone:
            id = messageIDs.next()
            batch.publish(
                toEveryone: true, id: id, sender: sender, channel: nil, timestamp: timestamp,
                data: outgoing.data.bytes, to: subjects.broadcast, at: position)
            target = .everyone
        }
        if batch.recording {
            batch.record(SentMessage(id: id, sender: sender, target: target, data: outgoing.data), at: position)
        }
    }
}
