import ImCore
import Logging
import Synchronization

/// Sends receipts to the nodes of their messages' senders, and `acked` ones once per message
/// and receiver.
final class ReceiptSender: Sendable {
    private let bus: any Bus
    private let subjects: Subjects
    private let logger: Logger
    /// Acks already reported (message id and receiver), forgotten wholesale past
    /// ``rememberedAcks``: a client acking one message twice gets one receipt.
    private let recentAcks = Mutex(Set<String>())
    /// The most acks remembered.
    static let rememberedAcks = 100_000

    init(bus: any Bus, subjects: Subjects, logger: Logger) {
        self.bus = bus
        self.subjects = subjects
        self.logger = logger
    }

    /// A client acknowledged a message: tell the sender, once per message and receiver.
    func acknowledged(_ messageID: String, by receiver: ClientID, route: AckRoute) {
        let key = messageID + "\u{0}" + receiver.rawValue
        let first = recentAcks.withLock { acks in
            if acks.count > Self.rememberedAcks { acks.removeAll() }
            return acks.insert(key).inserted
        }
        guard first else { return }
        let receipt = Receipt(messageID: messageID, sender: route.sender, receiver: receiver, status: .acked)
        Task { await send([receipt], to: route.senderNodes) }
    }

    /// Publishes `receipts` to each of `nodes` in one batch; a failure is logged (the sender
    /// gets no receipt).
    func send(_ receipts: [Receipt], to nodes: [NodeID]) async {
        guard !receipts.isEmpty, !nodes.isEmpty else { return }
        var batch: [BusMessage] = []
        for node in nodes {
            for receipt in receipts {
                batch.append(BusMessage(subject: subjects.node(node), payload: Envelope.receipt(receipt).encoded()))
            }
        }
        do {
            try await bus.publish(batch)
        } catch {
            logger.warning("could not publish receipts", metadata: ["error": "\(error)"])
        }
    }
}
