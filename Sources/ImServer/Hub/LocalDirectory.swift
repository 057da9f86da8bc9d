public import ImCore

/// The node's own view of its users: how many connections each has here, which channels
/// they belong to, and how many local users each channel has (so the node subscribes a
/// channel's subject while, and only while, it has a local member).
///
/// A pure value: the node keeps it behind a lock and turns its answers into bus
/// subscriptions and per-event-loop index updates.
public struct LocalDirectory: Sendable {
    private struct User {
        var connections = 0
        var channels: Set<String> = []
    }

    /// What a change means for the node's bus subscriptions and the user's channel set.
    public struct Change: Equatable, Sendable {
        /// Channels that gained their first local member: subscribe them.
        public var subscribe: [String] = []
        /// Channels that lost their last local member: unsubscribe them.
        public var unsubscribe: [String] = []
        /// The user's channels now, or `nil` when there is nothing to update (the user is not
        /// local, or is new here and in no channel).
        public var channels: Set<String>?
    }

    private var entries: [ClientID: User] = [:]
    private var channelUsers: [String: Int] = [:]

    /// An empty directory.
    public init() {}

    /// How many connections `user` has on this node.
    public func connections(of user: ClientID) -> Int { entries[user]?.connections ?? 0 }

    /// Whether `user` has a connection on this node.
    public func isLocal(_ user: ClientID) -> Bool { entries[user] != nil }

    /// The users with connections on this node, sorted.
    public var users: [ClientID] { entries.keys.sorted() }

    /// The channels with local members, sorted (for resubscribing after a reconnect).
    public var channels: [String] { channelUsers.keys.sorted() }

    /// A connection of `user` registered; `channels` is the user's membership as just loaded.
    ///
    /// A user's first connection with no channels changes nothing for the event loops' indexes:
    /// its ``Change/channels`` is `nil` (so no loop is woken for it).
    public mutating func attach(_ user: ClientID, channels: Set<String>) -> Change {
        var change = Change()
        let known = entries[user]
        var entry = known ?? User()
        entry.connections += 1
        replace(&entry, with: channels, change: &change)
        entries[user] = entry
        change.channels = known == nil && channels.isEmpty ? nil : entry.channels
        return change
    }

    /// A connection of `user` closed.
    public mutating func detach(_ user: ClientID) -> Change {
        var change = Change()
        guard var entry = entries[user] else { return change }
        entry.connections -= 1
        if entry.connections > 0 {
            entries[user] = entry
            change.channels = entry.channels
            return change
        }
        replace(&entry, with: [], change: &change)
        entries[user] = nil
        change.channels = []
        return change
    }

    /// `user` joined `channels` (no effect unless the user is local).
    public mutating func join(_ user: ClientID, channels: [String]) -> Change {
        update(user) { $0.union(channels) }
    }

    /// `user` left `channels` (no effect unless the user is local).
    public mutating func leave(_ user: ClientID, channels: [String]) -> Change {
        update(user) { $0.subtracting(channels) }
    }

    /// `user`'s channels are `channels` now (no effect unless the user is local).
    public mutating func setChannels(of user: ClientID, to channels: Set<String>) -> Change {
        update(user) { _ in channels }
    }

    private mutating func update(_ user: ClientID, _ transform: (Set<String>) -> Set<String>) -> Change {
        guard var entry = entries[user] else { return Change() }
        var change = Change()
        replace(&entry, with: transform(entry.channels), change: &change)
        entries[user] = entry
        change.channels = entry.channels
        return change
    }

    private mutating func replace(_ entry: inout User, with channels: Set<String>, change: inout Change) {
        for channel in channels.subtracting(entry.channels).sorted() {
            channelUsers[channel, default: 0] += 1
            if channelUsers[channel] == 1 { change.subscribe.append(channel) }
        }
        for channel in entry.channels.subtracting(channels).sorted() {
            channelUsers[channel, default: 0] -= 1
            if channelUsers[channel, default: 0] <= 0 {
                channelUsers[channel] = nil
                change.unsubscribe.append(channel)
            }
        }
        entry.channels = channels
    }
}
