import ImCore
import Logging
import NIOCore

/// Routes what the node's bus subscriber receives: channel messages and broadcasts to every
/// event-loop shard (one hop per shard, one encoded frame per shard), deliveries to users and
/// receipts to the shards holding their connections only (``UserShards``), commands to the
/// ``CommandRunner``.
final class EnvelopeRouter: Sendable {
    private let shards: [LoopHub]
    /// Which shards hold each user's connections: deliveries to users go only there.
    private let userShards: UserShards
    private let receipts: ReceiptSender
    private let commands: CommandRunner
    private let stats: NodeStats
    private let compactFrames: CompactFrameDemand
    private let logger: Logger

    init(
        shards: [LoopHub], userShards: UserShards, receipts: ReceiptSender, commands: CommandRunner,
        stats: NodeStats, compactFrames: CompactFrameDemand, logger: Logger
    ) {
        self.shards = shards
        self.userShards = userShards
        self.receipts = receipts
        self.commands = commands
        self.stats = stats
        self.compactFrames = compactFrames
        self.logger = logger
    }

    /// Routes one bus message; one that is not an envelope is dropped and logged.
    func route(_ message: BusMessage) async {
        let arrival = NIODeadline.now()
        stats.countBusMessage()
        let envelope: Envelope
        do {
            envelope = try Envelope(decoding: message.payload)
        } catch {
            stats.countMalformed()
            logger.error(
                "dropping malformed envelope", metadata: ["subject": "\(message.subject)", "error": "\(error)"])
            return
        }
        await handle(envelope, arrival: arrival)
    }

    private func handle(_ envelope: Envelope, arrival: NIODeadline) async {
        switch envelope {
        case .delivery(let delivery):
            stats.count(envelope: "delivery")
            await deliver(delivery, arrival: arrival)
        case .channel(let message):
            stats.count(envelope: "channel")
            guard let channel = message.channel else { return }
            fanOut(ServerFrame.message(message, compact: compactFrames.isWanted), arrival: arrival) { shard, frame in
                shard.deliver(frame, toChannel: channel)
            }
        case .broadcast(let message):
            stats.count(envelope: "broadcast")
            fanOut(
                ServerFrame.message(message, isBroadcast: true, compact: compactFrames.isWanted), arrival: arrival
            ) { shard, frame in
                shard.broadcast(frame)
            }
        case .receipt(let receipt):
            stats.count(envelope: "receipt")
            let frame = ServerFrame.receipt(receipt, compact: compactFrames.isWanted)
            let sender = [receipt.sender]
            for shard in userShards.shards(holding: sender) {
                shard.eventLoop.execute {
                    shard.deliveries(arrivedAt: arrival) { shard.deliver(frame, to: sender, isMessage: false) }
                }
            }
        case .command(let command, let reply):
            stats.count(envelope: "command")
            commands.enqueue(command, reply: reply)
        case .batch(let items):
            stats.count(envelope: "batch")
            await handle(batch: items, arrival: arrival)
        case .event, .reply:
            break
        }
    }

    /// Handles a batch in order; runs of deliveries without receipts go to each shard in one hop.
    private func handle(batch items: [Envelope], arrival: NIODeadline) async {
        var run: [(frame: ServerFrame, receivers: [ClientID])] = []
        for item in items {
            if case .delivery(let delivery) = item, !delivery.wantsReceipt {
                stats.count(envelope: "delivery")
                run.append(
                    (
                        ServerFrame.message(delivery.message, compact: compactFrames.isWanted),
                        delivery.receivers
                    ))
                continue
            }
            deliver(run, arrival: arrival)
            run.removeAll()
            await handle(item, arrival: arrival)
        }
        deliver(run, arrival: arrival)
    }

    /// Delivers on the shards holding the receivers only, each shard the items it has receivers of.
    private func deliver(_ run: [(frame: ServerFrame, receivers: [ClientID])], arrival: NIODeadline) {
        guard !run.isEmpty else { return }
        for (shard, items) in userShards.split(run, receivers: \.receivers) {
            shard.eventLoop.execute {
                shard.deliveries(arrivedAt: arrival) {
                    for (frame, receivers) in items { shard.deliver(frame, to: receivers) }
                }
            }
        }
    }

    /// Runs `body` on every shard's loop with a copy of `frame` of its own.
    private func fanOut(
        _ frame: ServerFrame, arrival: NIODeadline, _ body: @escaping @Sendable (LoopHub, ServerFrame) -> Void
    ) {
        for (index, shard) in shards.enumerated() {
            let local = index == 0 ? frame : frame.copy()
            shard.eventLoop.execute { shard.deliveries(arrivedAt: arrival) { body(shard, local) } }
        }
    }

    /// Delivers to the local connections of the receivers. With a receipt asked for, reports
    /// for the receivers this node reports for: `delivered` when a connection of theirs here
    /// took the message (one that is closing does not), `offline` otherwise.
    private func deliver(_ delivery: Delivery, arrival: NIODeadline) async {
        let frame = ServerFrame.message(
            delivery.message, wantsReceipt: delivery.wantsReceipt, compact: compactFrames.isWanted)
        let receivers = delivery.receivers
        guard delivery.wantsReceipt else {
            deliver([(frame, receivers)], arrival: arrival)
            return
        }
        let route = AckRoute(sender: delivery.message.sender, senderNodes: delivery.senderNodes)
        let reported = delivery.receiptFor
        let others = Array(Set(receivers).subtracting(reported))
        let id = delivery.message.id
        let written = userShards.shards(holding: receivers).map { shard in
            shard.eventLoop.submit {
                var delivered: [ClientID] = []
                shard.deliveries(arrivedAt: arrival) {
                    delivered = shard.deliver(frame, to: reported, awaitingAckOf: id, route: route)
                    shard.deliver(frame, to: others, awaitingAckOf: id, route: nil)
                }
                return delivered
            }
        }
        let nodes = delivery.senderNodes
        let sender = self.receipts
        Task {
            var delivered = Set<ClientID>()
            for future in written { delivered.formUnion((try? await future.get()) ?? []) }
            let receipts = reported.map { receiver in
                Receipt(
                    messageID: id, sender: delivery.message.sender, receiver: receiver,
                    status: delivered.contains(receiver) ? .delivered : .offline)
            }
            await sender.send(receipts, to: nodes)
        }
    }
}
