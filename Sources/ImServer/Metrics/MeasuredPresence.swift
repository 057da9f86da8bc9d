import ImCore
import ServiceLifecycle

/// The node's view of its presence directory: every call forwarded to `inner`, timed and
/// counted by ``BackplaneMeters``. Running it runs nothing: the directory's owner runs `inner`.
struct MeasuredPresence: Presence {
    let inner: any Presence
    let meters: BackplaneMeters

    var health: BackplaneHealth { inner.health }
    func run() async throws {}

    func connect(_ connection: ConnectionRecord) async throws -> Int? {
        try await meters.measure("connect") { try await inner.connect(connection) }
    }

    func disconnect(_ connection: ConnectionRecord) async throws -> Int? {
        try await meters.measure("disconnect") { try await inner.disconnect(connection) }
    }

    func nodes(of users: [ClientID]) async throws -> [ClientID: Set<NodeID>] {
        try await meters.measure("nodes") { try await inner.nodes(of: users) }
    }

    func onlineUsers(after: ClientID?, limit: Int) async throws -> [ClientID] {
        try await meters.measure("online_users") { try await inner.onlineUsers(after: after, limit: limit) }
    }

    func renewLease(of node: NodeID, ttl: Duration) async throws -> Bool {
        try await meters.measure("renew_lease") { try await inner.renewLease(of: node, ttl: ttl) }
    }

    func replaceConnections(of node: NodeID, with live: [ConnectionRecord]) async throws -> PresenceChanges {
        try await meters.measure("replace_connections") { try await inner.replaceConnections(of: node, with: live) }
    }

    func reapExpiredNodes() async throws -> [ConnectionRecord] {
        try await meters.measure("reap") { try await inner.reapExpiredNodes() }
    }

    func removeNode(_ node: NodeID) async throws -> [ConnectionRecord] {
        try await meters.measure("remove_node") { try await inner.removeNode(node) }
    }

    func join(_ user: ClientID, channels: [String]) async throws {
        try await meters.measure("join") { try await inner.join(user, channels: channels) }
    }

    func leave(_ user: ClientID, channels: [String]) async throws {
        try await meters.measure("leave") { try await inner.leave(user, channels: channels) }
    }

    func remove(_ users: [ClientID], from channel: String) async throws {
        try await meters.measure("remove") { try await inner.remove(users, from: channel) }
    }

    func clear(_ channel: String) async throws -> [ClientID] {
        try await meters.measure("clear") { try await inner.clear(channel) }
    }

    func channels(of user: ClientID) async throws -> [String] {
        try await meters.measure("channels") { try await inner.channels(of: user) }
    }

    func members(of channel: String, after: ClientID?, limit: Int) async throws -> [ClientID] {
        try await meters.measure("members") { try await inner.members(of: channel, after: after, limit: limit) }
    }

    func channelNames(after: String?, limit: Int) async throws -> [String] {
        try await meters.measure("channel_names") { try await inner.channelNames(after: after, limit: limit) }
    }

    func stats(of channel: String) async throws -> ChannelStats {
        try await meters.measure("channel_stats") { try await inner.stats(of: channel) }
    }

    func claimToken(id: String, ttl: Duration) async throws -> Bool {
        try await meters.measure("claim_token") { try await inner.claimToken(id: id, ttl: ttl) }
    }
}
