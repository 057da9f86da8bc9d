import ImCore
import Logging
import NIOCore

/// Runs helpers' commands to this node (join, leave, force offline) one at a time in arrival
/// order, and confirms each to its sender once it took effect.
///
/// Bounded: beyond ``maximumQueuedCommands`` waiting, new ones are dropped and logged; their
/// senders get no confirmation and give up after their command timeout.
final class CommandRunner: Sendable {
    private let commands = AsyncStream<(NodeCommand, ReplyAddress?)>.makeStream(
        bufferingPolicy: .bufferingOldest(CommandRunner.maximumQueuedCommands))
    /// The most commands waiting to run.
    static let maximumQueuedCommands = 65_536
    private let directory: ChannelDirectory
    private let shards: [LoopHub]
    private let bus: any Bus
    private let logger: Logger

    init(directory: ChannelDirectory, shards: [LoopHub], bus: any Bus, logger: Logger) {
        self.directory = directory
        self.shards = shards
        self.bus = bus
        self.logger = logger
    }

    /// Queues `command`, to be confirmed to `reply` once done.
    func enqueue(_ command: NodeCommand, reply: ReplyAddress?) {
        if case .dropped = commands.continuation.yield((command, reply)) {
            logger.warning("dropping a node command: \(Self.maximumQueuedCommands) are waiting already")
        }
    }

    /// Runs the commands as they come, until ``finish()``.
    func run() async {
        for await (command, reply) in commands.stream {
            await execute(command)
            guard let reply else { continue }
            do {
                try await bus.publish(Envelope.reply(requestID: reply.requestID).encoded(), to: reply.subject)
            } catch {
                logger.warning("could not confirm command", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Ends ``run()`` after the commands already queued.
    func finish() { commands.continuation.finish() }

    private func execute(_ command: NodeCommand) async {
        switch command {
        case .join(let user, let channels):
            await directory.update(user) { $0.join(user, channels: channels) }
        case .leave(let user, let channels):
            await directory.update(user) { $0.leave(user, channels: channels) }
        case .forceOffline(let user):
            let closing = shards.map { shard in shard.eventLoop.submit { shard.close(user, code: .forcedOffline) } }
            _ = try? await EventLoopFuture.whenAllComplete(closing, on: shards[0].eventLoop).get()
        }
    }
}
