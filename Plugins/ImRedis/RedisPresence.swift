public import ImBackplane
public import Logging
public import NIOCore

/// ``Presence`` in Redis: hashes, sets and sorted sets, with Lua scripts for every multi-key
/// step, node leases on the Redis clock, and lexicographic paging (`ZRANGE … BYLEX`).
///
/// Keys of one user or one channel share a hash tag (`{user}`, `{channel}`). The scripts also
/// touch the global indexes (online users, channel names, leases), so they need a standalone
/// Redis (or Sentinel): on Redis Cluster those steps would cross slots.
public final class RedisPresence: Presence {
    let client: RedisClient
    private let prefix: String

    /// A presence directory on the Redis that `configuration` names, sharing `client`'s pool.
    init(client: RedisClient) {
        self.client = client
        self.prefix = client.configuration.keyPrefix
    }

    /// A presence directory with its own connection pool.
    public convenience init(configuration: RedisConfiguration, group: any EventLoopGroup, logger: Logger) {
        self.init(client: RedisClient(configuration: configuration, group: group, logger: logger))
    }

    // MARK: Lifecycle

    /// `.down` with the last failure while the connection pool cannot reach Redis.
    public var health: BackplaneHealth { client.health }

    /// Pings Redis once a second, so ``health`` follows it going away and coming back even
    /// while the directory is idle; on graceful shutdown (or cancellation) closes the pool and
    /// returns. Calls work before `run()` too: connections open on demand.
    public func run() async throws {
        await client.watch()
        await client.close()
    }

    // MARK: Keys

    func connections(_ user: ClientID) -> String { "\(prefix):conn:{\(user.rawValue)}" }
    private var online: String { "\(prefix):online" }
    private func nodeConnections(_ node: NodeID) -> String { "\(prefix):nodeconns:{\(node.rawValue)}" }
    private var leases: String { "\(prefix):leases" }
    private func channels(_ user: ClientID) -> String { "\(prefix):chans:{\(user.rawValue)}" }
    private func members(_ channel: String) -> String { "\(prefix):members:{\(channel)}" }
    private var channelIndex: String { "\(prefix):channels" }
    private func token(_ id: String) -> String { "\(prefix):token:\(id)" }

    /// Between the node and the rest of a connection hash's value (`\31` in ``RedisScripts/route``).
    private static let separator = "\u{1F}"

    /// What the connection hash stores: node, then `1`+meta or `0`.
    private func stored(_ record: ConnectionRecord) -> String {
        record.node.rawValue + Self.separator + (record.meta.map { "1" + $0 } ?? "0")
    }

    private func record(user: String, connection: String, stored value: String) -> ConnectionRecord? {
        guard let split = value.firstIndex(of: Character(Self.separator)) else { return nil }
        let flagged = value[value.index(after: split)...]
        let meta = flagged.first == "1" ? String(flagged.dropFirst()) : nil
        return ConnectionRecord(
            client: ClientID(rawValue: user), node: NodeID(rawValue: String(value[..<split])),
            connection: ConnectionID(rawValue: connection), meta: meta)
    }

    private func nodeMember(_ record: ConnectionRecord) -> String {
        record.connection.rawValue + Self.separator + record.client.rawValue
    }

    // MARK: Connections

    public func connect(_ connection: ConnectionRecord) async throws -> Int? {
        let reply = try await client.evaluate(
            RedisScripts.connect,
            keys: [connections(connection.client), online, nodeConnections(connection.node)],
            arguments: [
                connection.connection.rawValue, stored(connection), connection.client.rawValue,
                nodeMember(connection),
            ])
        return try count(reply)
    }

    public func disconnect(_ connection: ConnectionRecord) async throws -> Int? {
        let reply = try await client.evaluate(
            RedisScripts.disconnect,
            keys: [connections(connection.client), online, nodeConnections(connection.node)],
            arguments: [connection.connection.rawValue, "", connection.client.rawValue, nodeMember(connection)])
        return try count(reply)
    }

    private func count(_ reply: RedisValue) throws -> Int? {
        guard let value = reply.int else {
            throw BackplaneError.protocolViolation("redis answered a connection count with \(reply)")
        }
        return value < 0 ? nil : value
    }

    public func nodes(of users: [ClientID]) async throws -> [ClientID: Set<NodeID>] {
        guard !users.isEmpty else { return [:] }
        let replies = try await client.send(users.map { RedisCommand(["HVALS", connections($0)]) })
        var result: [ClientID: Set<NodeID>] = [:]
        for (user, reply) in zip(users, replies) {
            let values = try reply.unwrapped("HVALS").array ?? []
            let nodes = values.compactMap { $0.string?.split(separator: Character(Self.separator)).first }
            if !nodes.isEmpty { result[user] = Set(nodes.map { NodeID(rawValue: String($0)) }) }
        }
        return result
    }

    public func onlineUsers(after: ClientID?, limit: Int) async throws -> [ClientID] {
        try await page(online, after: after?.rawValue, limit: limit).map(ClientID.init(rawValue:))
    }

    private func page(_ key: String, after: String?, limit: Int) async throws -> [String] {
        guard limit > 0 else { return [] }
        let reply = try await client.send(
            RedisCommand([
                "ZRANGE", key, after.map { "(" + $0 } ?? "-", "+",
                "BYLEX", "LIMIT", "0", String(limit),
            ]))
        return (reply.array ?? []).compactMap(\.string)
    }

    // MARK: Leases

    public func renewLease(of node: NodeID, ttl: Duration) async throws -> Bool {
        let milliseconds = max(ttl.clamped(to: Duration.claimTTLRange).nanoseconds / 1_000_000, 1)
        let reply = try await client.evaluate(
            RedisScripts.renewLease, keys: [leases],
            arguments: [node.rawValue, String(milliseconds)])
        guard let wasLive = reply.int else {
            throw BackplaneError.protocolViolation("redis answered a lease renewal with \(reply)")
        }
        return wasLive == 1
    }

    public func replaceConnections(of node: NodeID, with live: [ConnectionRecord]) async throws -> PresenceChanges {
        let arguments = live.filter { $0.node == node }.flatMap { record in
            [record.connection.rawValue, record.client.rawValue, stored(record)]
        }
        let reply = try await client.evaluate(
            RedisScripts.replaceConnections, keys: [online], arguments: [prefix, node.rawValue] + arguments)
        let fields: [String] = (reply.array ?? []).compactMap(\.string)
        var changes = PresenceChanges()
        for index in stride(from: 0, to: fields.count - 3, by: 4) {
            guard let record = record(user: fields[index + 1], connection: fields[index + 2], stored: fields[index + 3])
            else { continue }
            if fields[index] == "on" { changes.online.append(record) } else { changes.offline.append(record) }
        }
        changes.online.sort { $0.client < $1.client }
        changes.offline.sort { $0.client < $1.client }
        return changes
    }

    public func reapExpiredNodes() async throws -> [ConnectionRecord] {
        try await drop(node: "")
    }

    public func removeNode(_ node: NodeID) async throws -> [ConnectionRecord] {
        try await drop(node: node.rawValue)
    }

    private func drop(node: String) async throws -> [ConnectionRecord] {
        let reply = try await client.evaluate(
            RedisScripts.dropNodes, keys: [leases, online], arguments: [prefix, node])
        let fields = (reply.array ?? []).compactMap(\.string)
        return stride(from: 0, to: fields.count - 3, by: 4).compactMap { index in
            record(user: fields[index], connection: fields[index + 2], stored: fields[index + 3])
        }
    }

    // MARK: Channels

    public func join(_ user: ClientID, channels: [String]) async throws {
        guard !channels.isEmpty else { return }
        _ = try await client.evaluate(
            RedisScripts.join, keys: [self.channels(user), channelIndex],
            arguments: [prefix, user.rawValue] + channels)
    }

    public func leave(_ user: ClientID, channels: [String]) async throws {
        guard !channels.isEmpty else { return }
        _ = try await client.evaluate(
            RedisScripts.leave, keys: [channelIndex],
            arguments: [prefix] + channels.flatMap { [user.rawValue, $0] })
    }

    public func remove(_ users: [ClientID], from channel: String) async throws {
        guard !users.isEmpty else { return }
        _ = try await client.evaluate(
            RedisScripts.leave, keys: [channelIndex],
            arguments: [prefix] + users.flatMap { [$0.rawValue, channel] })
    }

    public func clear(_ channel: String) async throws -> [ClientID] {
        let reply = try await client.evaluate(
            RedisScripts.clear, keys: [channelIndex, members(channel)],
            arguments: [prefix, channel])
        return (reply.array ?? []).compactMap(\.string).map(ClientID.init(rawValue:))
    }

    public func channels(of user: ClientID) async throws -> [String] {
        let reply = try await client.send(RedisCommand(["SMEMBERS", channels(user)]))
        return (reply.array ?? []).compactMap(\.string).sorted()
    }

    public func members(of channel: String, after: ClientID?, limit: Int) async throws -> [ClientID] {
        try await page(members(channel), after: after?.rawValue, limit: limit).map(ClientID.init(rawValue:))
    }

    public func channelNames(after: String?, limit: Int) async throws -> [String] {
        try await page(channelIndex, after: after, limit: limit)
    }

    public func stats(of channel: String) async throws -> ChannelStats {
        let replies = try await client.send([
            RedisCommand(["ZCARD", members(channel)]),
            RedisCommand(["ZINTERCARD", "2", members(channel), online]),
        ])
        guard let total = try replies[0].unwrapped("ZCARD").int, let online = try replies[1].unwrapped("ZINTERCARD").int
        else { throw BackplaneError.protocolViolation("redis answered channel stats with \(replies)") }
        return ChannelStats(members: total, online: online)
    }

    // MARK: Tokens

    public func claimToken(id: String, ttl: Duration) async throws -> Bool {
        let milliseconds = max(ttl.clamped(to: Duration.claimTTLRange).nanoseconds / 1_000_000, 1)
        let reply = try await client.send(RedisCommand(["SET", token(id), "1", "NX", "PX", String(milliseconds)]))
        return reply == .status("OK")
    }
}
