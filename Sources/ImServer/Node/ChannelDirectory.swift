import ImCore
import NIOCore
import Synchronization

/// Which users have connections on this node and which channels they are in, kept alike in
/// three places: the ``LocalDirectory``, the channel index of each shard holding the user's
/// connections (``LoopHub/setChannels(of:to:)``) and the bus subscriptions (``SubscriptionQueue``).
///
/// Each change is decided and handed to the shards and the subscription queue under one lock,
/// so both see changes in the order they were decided; nothing else writes to the three.
final class ChannelDirectory: Sendable {
    private let directory = Mutex(LocalDirectory())
    /// The bus subscriptions the directory's channels need.
    let subscriptions: SubscriptionQueue
    /// Which shards hold each user's connections.
    let userShards = UserShards()

    init(subjects: Subjects) {
        self.subscriptions = SubscriptionQueue(subjects: subjects)
    }

    /// Adds `connection` to its shard, with its user's `channels`, and returns once the bus
    /// subscriptions those channels need are in place.
    func attach(_ connection: NodeConnection, channels: Set<String>) async {
        let shard = connection.hub
        let user = connection.client
        let ticket = directory.withLock { directory in
            let change = directory.attach(user, channels: channels)
            // Queued before the channel sets of `apply`, so the shard has the connection when they arrive.
            shard.eventLoop.execute { if !connection.isClosing { shard.add(connection) } }
            userShards.add(user, on: shard)
            apply(change, to: user)
            return subscriptions.enqueue(change)
        }
        await subscriptions.waitUntilApplied(ticket)
    }

    /// Removes one connection of `user` from `shard` (which already dropped it); unsubscribes,
    /// in the background, what nobody on the node needs any more.
    func detach(_ user: ClientID, from shard: LoopHub) {
        directory.withLock { directory in
            userShards.remove(user, from: shard)
            let change = directory.detach(user)
            apply(change, to: user)
            _ = subscriptions.enqueue(change)
        }
    }

    /// Changes `user`'s channels and returns once the subscriptions are in place.
    func update(_ user: ClientID, _ change: (inout LocalDirectory) -> LocalDirectory.Change) async {
        let ticket = directory.withLock { directory in
            let decided = change(&directory)
            apply(decided, to: user)
            return subscriptions.enqueue(decided)
        }
        await subscriptions.waitUntilApplied(ticket)
    }

    /// The users with connections on this node.
    var localUsers: [ClientID] { directory.withLock { $0.users } }

    /// Hands `user`'s channel set to the shards holding the user's connections (under the
    /// lock): a shard keeps channels only for users it holds, and a connection handed to a shard
    /// later brings its user's channels along (``attach(_:channels:)``).
    private func apply(_ change: LocalDirectory.Change, to user: ClientID) {
        guard let channels = change.channels else { return }
        for shard in userShards.shards(holding: [user]) {
            shard.eventLoop.execute { shard.setChannels(of: user, to: channels) }
        }
    }
}
