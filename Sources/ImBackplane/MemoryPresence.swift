import ServiceLifecycle
import Synchronization

/// ``Presence`` in this process's memory: the embedded default for a single node.
public final class MemoryPresence: Presence {
    private struct State {
        var connections: [ClientID: [ConnectionID: ConnectionRecord]] = [:]
        var byNode: [NodeID: Set<ConnectionRecord>] = [:]
        var leases: [NodeID: ContinuousClock.Instant] = [:]
        var members: [String: Set<ClientID>] = [:]
        var channelsOf: [ClientID: Set<String>] = [:]
        var tokens: [String: ContinuousClock.Instant] = [:]
        var nextTokenSweep: ContinuousClock.Instant?

        /// Removes every connection of `node`; returns one record per user left with none.
        mutating func drop(node: NodeID) -> [ConnectionRecord] {
            leases[node] = nil
            guard let records = byNode.removeValue(forKey: node) else { return [] }
            var offline: [ClientID: ConnectionRecord] = [:]
            for record in records {
                connections[record.client]?[record.connection] = nil
                if connections[record.client]?.isEmpty == true {
                    connections[record.client] = nil
                    offline[record.client] = record
                }
            }
            return offline.values.sorted { $0.client < $1.client }
        }

        mutating func remove(_ user: ClientID, from channel: String) {
            members[channel]?.remove(user)
            if members[channel]?.isEmpty == true { members[channel] = nil }
            channelsOf[user]?.remove(channel)
            if channelsOf[user]?.isEmpty == true { channelsOf[user] = nil }
        }
    }

    private let state = Mutex(State())
    private let clock = ContinuousClock()

    /// An empty directory.
    public init() {}

    /// Always `.up`: there is no backend to lose.
    public var health: BackplaneHealth { .up }

    /// Nothing to run: waits for graceful shutdown (or cancellation).
    public func run() async throws {
        try? await gracefulShutdown()
    }

    public func connect(_ connection: ConnectionRecord) async throws -> Int? {
        state.withLock { state in
            guard state.connections[connection.client]?[connection.connection] == nil else { return nil }
            state.connections[connection.client, default: [:]][connection.connection] = connection
            state.byNode[connection.node, default: []].insert(connection)
            return state.connections[connection.client]?.count ?? 0
        }
    }

    public func disconnect(_ connection: ConnectionRecord) async throws -> Int? {
        state.withLock { state in
            guard let stored = state.connections[connection.client]?.removeValue(forKey: connection.connection)
            else { return nil }
            state.byNode[stored.node]?.remove(stored)
            let count = state.connections[connection.client]?.count ?? 0
            if count == 0 { state.connections[connection.client] = nil }
            return count
        }
    }

    public func nodes(of users: [ClientID]) async throws -> [ClientID: Set<NodeID>] {
        state.withLock { state in
            var result: [ClientID: Set<NodeID>] = [:]
            for user in users {
                guard let records = state.connections[user], !records.isEmpty else { continue }
                result[user] = Set(records.values.map(\.node))
            }
            return result
        }
    }

    public func onlineUsers(after: ClientID?, limit: Int) async throws -> [ClientID] {
        state.withLock { page(of: $0.connections.keys, after: after, limit: limit) }
    }

    public func renewLease(of node: NodeID, ttl: Duration) async throws -> Bool {
        let now = clock.now
        let deadline = now.advanced(by: ttl.clamped(to: Duration.claimTTLRange))
        return state.withLock { state in
            let wasLive = state.leases[node].map { $0 > now } ?? false
            state.leases[node] = deadline
            return wasLive
        }
    }

    public func replaceConnections(of node: NodeID, with live: [ConnectionRecord]) async throws -> PresenceChanges {
        state.withLock { state in
            var changes = PresenceChanges()
            var liveIDs = Set<ConnectionID>()
            for record in live where record.node == node {
                liveIDs.insert(record.connection)
                guard state.connections[record.client]?[record.connection] == nil else { continue }
                state.connections[record.client, default: [:]][record.connection] = record
                state.byNode[node, default: []].insert(record)
                if state.connections[record.client]?.count == 1 { changes.online.append(record) }
            }
            for stale in state.byNode[node] ?? [] where !liveIDs.contains(stale.connection) {
                state.byNode[node]?.remove(stale)
                state.connections[stale.client]?[stale.connection] = nil
                if state.connections[stale.client]?.isEmpty == true {
                    state.connections[stale.client] = nil
                    changes.offline.append(stale)
                }
            }
            changes.online.sort { $0.client < $1.client }
            changes.offline.sort { $0.client < $1.client }
            return changes
        }
    }

    public func reapExpiredNodes() async throws -> [ConnectionRecord] {
        let now = clock.now
        return state.withLock { state in
            let expired = state.leases.filter { $0.value <= now }.keys.sorted()
            return expired.flatMap { state.drop(node: $0) }
        }
    }

    public func removeNode(_ node: NodeID) async throws -> [ConnectionRecord] {
        state.withLock { $0.drop(node: node) }
    }

    public func join(_ user: ClientID, channels: [String]) async throws {
        state.withLock { state in
            for channel in channels {
                state.members[channel, default: []].insert(user)
                state.channelsOf[user, default: []].insert(channel)
            }
        }
    }

    public func leave(_ user: ClientID, channels: [String]) async throws {
        state.withLock { state in
            for channel in channels { state.remove(user, from: channel) }
        }
    }

    public func remove(_ users: [ClientID], from channel: String) async throws {
        state.withLock { state in
            for user in users { state.remove(user, from: channel) }
        }
    }

    public func clear(_ channel: String) async throws -> [ClientID] {
        state.withLock { state in
            let removed = state.members[channel].map { $0.sorted() } ?? []
            for user in removed { state.remove(user, from: channel) }
            return removed
        }
    }

    public func channels(of user: ClientID) async throws -> [String] {
        state.withLock { $0.channelsOf[user].map { $0.sorted() } ?? [] }
    }

    public func members(of channel: String, after: ClientID?, limit: Int) async throws -> [ClientID] {
        state.withLock { state in
            guard let members = state.members[channel] else { return [] }
            return page(of: members, after: after, limit: limit)
        }
    }

    public func channelNames(after: String?, limit: Int) async throws -> [String] {
        state.withLock { page(of: $0.members.keys, after: after, limit: limit) }
    }

    public func stats(of channel: String) async throws -> ChannelStats {
        state.withLock { state in
            let members = state.members[channel] ?? []
            let online = members.reduce(0) { $0 + (state.connections[$1] == nil ? 0 : 1) }
            return ChannelStats(members: members.count, online: online)
        }
    }

    public func claimToken(id: String, ttl: Duration) async throws -> Bool {
        let now = clock.now
        return state.withLock { state in
            if let expiry = state.tokens[id], expiry > now { return false }
            if let sweep = state.nextTokenSweep, sweep > now {
            } else {
                state.tokens = state.tokens.filter { $0.value > now }
                state.nextTokenSweep = now.advanced(by: .seconds(1))
            }
            state.tokens[id] = now.advanced(by: ttl.clamped(to: Duration.claimTTLRange))
            return true
        }
    }
}

/// Sorted elements of `items` greater than `after`, at most `limit`.
private func page<S: Sequence>(of items: S, after: S.Element?, limit: Int) -> [S.Element]
where S.Element: Comparable {
    guard limit > 0 else { return [] }
    let candidates = after.map { cursor in items.filter { $0 > cursor } } ?? Array(items)
    return Array(candidates.sorted().prefix(limit))
}
