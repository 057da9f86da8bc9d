import ImCore
import Logging
import NIOCore

/// Runs helpers' commands to this node (join, leave, force offline) one at a time in arrival
/// order, and confirms each to its sender once it took effect.
///
/// Bounded: beyond ``maximumQueuedCommands`` waiting, new ones are dropped and logged; their
/// senders get no confirmation and give up after their command timeout.
final class CommandRunner: Sendable {
    /// What the runner does, in order.
    private enum Work: Sendable {
        /// A helper's command, confirmed to `reply` once done.
        case command(NodeCommand, reply: ReplyAddress?)
        /// Reloads these local users' channels from Presence (after the backend may have lost
        /// them): in the same queue as joins and leaves, so none of those is overtaken.
        case reloadChannels([ClientID])
    }

    private let commands = AsyncStream<Work>.makeStream(
        bufferingPolicy: .bufferingOldest(CommandRunner.maximumQueuedCommands))
    /// The most commands waiting to run.
    static let maximumQueuedCommands = 65_536
    private let directory: ChannelDirectory
    private let bus: any Bus
    private let presence: any Presence
    private let logger: Logger

    init(directory: ChannelDirectory, backplane: Backplane, logger: Logger) {
        self.directory = directory
        self.bus = backplane.bus
        self.presence = backplane.presence
        self.logger = logger
    }

    /// Queues `command`, to be confirmed to `reply` once done.
    func enqueue(_ command: NodeCommand, reply: ReplyAddress?) {
        if case .dropped = commands.continuation.yield(.command(command, reply: reply)) {
            logger.warning("dropping a node command: \(Self.maximumQueuedCommands) are waiting already")
        }
    }

    /// Queues reloading `users`' channels from Presence.
    func reloadChannels(of users: [ClientID]) {
        guard !users.isEmpty else { return }
        if case .dropped = commands.continuation.yield(.reloadChannels(users)) {
            logger.warning("could not queue reloading channels: \(Self.maximumQueuedCommands) commands are waiting")
        }
    }

    /// Runs the commands as they come, until ``finish()``.
    func run() async {
        for await work in commands.stream {
            guard case .command(let command, let reply) = work else {
                if case .reloadChannels(let users) = work { await reload(users) }
                continue
            }
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

    private func reload(_ users: [ClientID]) async {
        for user in users {
            do {
                let channels = Set(try await presence.channels(of: user))
                await directory.update(user) { $0.setChannels(of: user, to: channels) }
            } catch {
                logger.warning(
                    "could not reload a user's channels", metadata: ["client": "\(user)", "error": "\(error)"])
            }
        }
        logger.notice("reloaded channels from presence", metadata: ["users": "\(users.count)"])
    }

    private func execute(_ command: NodeCommand) async {
        switch command {
        case .join(let user, let channels):
            await directory.update(user) { $0.join(user, channels: channels) }
        case .leave(let user, let channels):
            await directory.update(user) { $0.leave(user, channels: channels) }
        case .forceOffline(let user):
            // The loops holding the user's connections; a connection handed to a loop after
            // this look-up was not there when the command arrived.
            let holding = directory.userShards.shards(holding: [user])
            guard let first = holding.first else { return }
            let closing = holding.map { shard in shard.eventLoop.submit { shard.close(user, code: .forcedOffline) } }
            _ = try? await EventLoopFuture.whenAllComplete(closing, on: first.eventLoop).get()
        }
    }
}
