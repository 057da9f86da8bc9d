import ImCore
import NIOCore

/// The messages of one ``ImHelper/submit(_:)`` made into the send queue's items, and how the
/// items' outcomes become each message's result.
///
/// Consecutive messages to one channel (or to everyone) are encoded as they are prepared into
/// one ``SendQueue/Item/publish(_:to:)`` item of at most ``SendQueue/maximumBusMessageBytes``:
/// a request of a thousand channel messages is a handful of items, not a thousand envelopes
/// moved, copied and released one by one on their way to the bus.
struct PreparedBatch {
    /// Whether ``HelperConfiguration/onSend`` is told of each message sent.
    let recording: Bool
    private var items: [SendQueue.Item] = []
    /// For each item: the position of its first message, and the ids of its messages.
    private var covered: [(start: Int, ids: [String])] = []
    /// The run of publishes still taking messages.
    private var run: Run?
    /// The last channel whose subject was made, and that subject.
    private var lastChannel: (name: String, subject: String)?
    /// Each message's result: set where it is known before sending (refused), the rest from
    /// the items' outcomes.
    private var results: [Result<SendResult, any Error>]
    /// What ``HelperConfiguration/onSend`` is told of each message, when recording.
    private var records: [SentMessage?]

    /// An empty batch for `count` messages.
    init(count: Int, recording: Bool) {
        self.recording = recording
        results = Array(repeating: .failure(CancellationError()), count: count)
        records = recording ? Array(repeating: nil, count: count) : []
    }

    /// The subject of `channel`: the last one's when it is the same channel (a run of messages
    /// to one channel validates it and makes its subject once), else what `make` makes.
    mutating func subject(of channel: String, _ make: (String) throws(HelperError) -> String) throws(HelperError)
        -> String
    {
        if let lastChannel, lastChannel.name == channel { return lastChannel.subject }
        let subject = try make(channel)
        lastChannel = (channel, subject)
        return subject
    }

    /// Records that the message at `position` was refused before sending.
    mutating func refuse(_ position: Int, _ error: any Error) {
        results[position] = .failure(error)
    }

    /// Keeps what ``HelperConfiguration/onSend`` is told of the message at `position` once it
    /// is sent (when ``recording``).
    mutating func record(_ message: SentMessage, at position: Int) {
        records[position] = message
    }

    /// Adds an item of one message (to users), after the messages before it.
    mutating func add(_ item: SendQueue.Item, id: String, at position: Int) {
        closeRun()
        items.append(item)
        covered.append((position, [id]))
    }

    /// Adds the envelope of a channel message (or, `toEveryone`, of a broadcast), given by its
    /// parts: to the open run when it is for the same subject, follows its last message and
    /// has room, else as the start of a new run.
    mutating func publish(
        toEveryone: Bool, id: String, sender: ClientID, channel: String?, timestamp: Int64, data: ByteBuffer,
        to subject: String, at position: Int
    ) {
        let size = 64 + id.utf8.count + sender.rawValue.utf8.count + (channel?.utf8.count ?? 0) + data.readableBytes
        // Grown in place (`run?.`), so its buffer is never shared, and copied, on an append.
        if run?.takes(subject, at: position, size: size) != true {
            closeRun()
            run = Run(subject: subject, start: position, capacity: size)
        }
        run?.envelopes.appendMessage(
            toEveryone: toEveryone, id: id, sender: sender, channel: channel, timestamp: timestamp, data: data)
        run?.ids.append(id)
    }

    /// The queue's items, the open run closed.
    mutating func finishItems() -> [SendQueue.Item] {
        closeRun()
        return items
    }

    private mutating func closeRun() {
        guard let open = run else { return }
        run = nil
        items.append(.publish(open.envelopes, to: open.subject))
        covered.append((open.start, open.ids))
    }

    /// Consecutive channel or broadcast messages to one subject, encoded as they come.
    private struct Run {
        let subject: String
        /// The position of its first message.
        let start: Int
        var envelopes: EnvelopeBatchEncoder
        var ids: [String] = []

        init(subject: String, start: Int, capacity: Int) {
            self.subject = subject
            self.start = start
            envelopes = EnvelopeBatchEncoder(capacity: capacity)
        }

        /// Whether the message at `position`, to `subject`, whose envelope takes about `size`
        /// bytes, joins this run: the same subject, right after its last message, and room left.
        func takes(_ subject: String, at position: Int, size: Int) -> Bool {
            self.subject == subject && start + ids.count == position
                && envelopes.byteCount + size <= SendQueue.maximumBusMessageBytes
        }
    }

    /// Each message's result, in order, from the items' `outcomes`; tells `onSend` of each
    /// message sent, in order.
    consuming func results(of outcomes: [SendQueue.Outcome], onSend: (@Sendable (SentMessage) -> Void)?)
        -> [Result<SendResult, any Error>]
    {
        for ((start, ids), outcome) in zip(covered, outcomes) {
            for (offset, id) in ids.enumerated() {
                results[start + offset] = outcome.map { SendResult(id: id, offline: $0) }
            }
        }
        if let onSend {
            for (record, result) in zip(records, results) {
                if let record, case .success = result { onSend(record) }
            }
        }
        return results
    }
}
