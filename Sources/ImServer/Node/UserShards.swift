import ImCore
import Synchronization

/// Which shards hold each local user's connections, so that a delivery to users wakes only
/// the loops holding them rather than every loop of the node.
///
/// ``ChannelDirectory`` adds a connection's shard when it hands the connection to that shard
/// (under its lock, after queueing the add), so a delivery that finds the shard here runs on
/// the shard's loop after the connection is there. A shard is removed once its connection
/// closed; a delivery that still finds it finds no connection there, as before.
final class UserShards: Sendable {
    /// One entry per connection: the shard holding it.
    private let entries = Mutex<[ClientID: [LoopHub]]>([:])

    /// A connection of `user` was handed to `shard`.
    func add(_ user: ClientID, on shard: LoopHub) {
        entries.withLock { $0[user, default: []].append(shard) }
    }

    /// A connection of `user` on `shard` closed.
    func remove(_ user: ClientID, from shard: LoopHub) {
        entries.withLock { entries in
            guard var list = entries[user], let index = list.firstIndex(where: { $0 === shard }) else { return }
            list.remove(at: index)
            entries[user] = list.isEmpty ? nil : list
        }
    }

    /// The shards holding any connection of `users`, each once.
    func shards(holding users: [ClientID]) -> [LoopHub] {
        entries.withLock { entries in
            var found: [LoopHub] = []
            Self.add(shardsOf: users, in: entries, to: &found)
            return found
        }
    }

    /// Appends to `found` the shards of `users` it does not have yet.
    private static func add(shardsOf users: [ClientID], in entries: [ClientID: [LoopHub]], to found: inout [LoopHub]) {
        for user in users {
            for shard in entries[user] ?? [] where !found.contains(where: { $0 === shard }) { found.append(shard) }
        }
    }

    /// `items` split by the shards holding any of each item's receivers, in `items`' order:
    /// for each such shard, the items it has receivers of.
    func split<Item: Sendable>(_ items: [Item], receivers: (Item) -> [ClientID]) -> [(shard: LoopHub, items: [Item])] {
        entries.withLock { entries in
            var split: [(shard: LoopHub, items: [Item])] = []
            var reached: [LoopHub] = []
            for item in items {
                reached.removeAll(keepingCapacity: true)
                Self.add(shardsOf: receivers(item), in: entries, to: &reached)
                for shard in reached {
                    if let index = split.firstIndex(where: { $0.shard === shard }) {
                        split[index].items.append(item)
                    } else {
                        split.append((shard, [item]))
                    }
                }
            }
            return split
        }
    }
}
