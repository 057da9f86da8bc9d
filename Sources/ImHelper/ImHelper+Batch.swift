public import ImCore

/// One message of a batch sent with ``ImHelper/send(_:)``.
public struct OutgoingMessage: Sendable {
    /// The body.
    public var data: JSONPayload
    /// Who sends it.
    public var sender: ClientID
    /// Who gets it (duplicates ignored).
    public var receivers: [ClientID]
    /// Whether the sender's connections get receipts.
    public var receipt: Bool

    /// Describes a message to send.
    public init(_ data: JSONPayload, from sender: ClientID, to receivers: [ClientID], receipt: Bool = false) {
        self.data = data
        self.sender = sender
        self.receivers = receivers
        self.receipt = receipt
    }
}

extension ImHelper {
    /// Sends several messages at once (like Pusher's batch trigger): they share one presence
    /// lookup and one publish round trip, and keep their order. Returns one result per message,
    /// in order; if the backplane fails, none of them was sent and the error is thrown.
    @discardableResult
    public func send(_ messages: [OutgoingMessage]) async throws -> [SendResult] {
        let prepared = messages.map { outgoing in
            var seen = Set<ClientID>()
            let unique = outgoing.receivers.filter { seen.insert($0).inserted }
            return (
                message: makeMessage(outgoing.data, from: outgoing.sender, channel: nil), receivers: unique,
                receipt: outgoing.receipt
            )
        }
        let results = try await queue.send(prepared)
        if let onSend = configuration.onSend {
            for (outgoing, sent) in zip(prepared, messages) {
                onSend(
                    SentMessage(
                        id: outgoing.message.id, sender: sent.sender, target: .users(outgoing.receivers),
                        data: sent.data))
            }
        }
        return results
    }
}
