import ImBackplane

/// What `presence.json` holds: connections per user, node leases, channel membership both ways,
/// claimed tokens. Keys are the identifiers' raw strings.
struct PresenceState: Codable, Equatable, Sendable {
    /// Each user's connections, by connection id.
    var connections: [String: [String: ConnectionRecord]] = [:]
    /// When each node's lease runs out (seconds since 1970).
    var leases: [String: Double] = [:]
    /// Each channel's members.
    var members: [String: Set<String>] = [:]
    /// Each user's channels.
    var channelsOf: [String: Set<String>] = [:]
    /// Claimed token ids and when the claim expires (seconds since 1970).
    var tokens: [String: Double] = [:]

    /// Removes every connection of `node` and its lease; one record per user left with none.
    mutating func drop(node: String) -> [ConnectionRecord] {
        leases[node] = nil
        var offline: [ConnectionRecord] = []
        for user in connections.keys.sorted() {
            guard var records = connections[user] else { continue }
            let theirs = records.filter { $0.value.node.rawValue == node }
            guard let last = theirs.values.first else { continue }
            for key in theirs.keys { records[key] = nil }
            if records.isEmpty {
                connections[user] = nil
                offline.append(last)
            } else {
                connections[user] = records
            }
        }
        return offline
    }

    /// Makes `node`'s connections exactly `live` (adding first); returns who came online and
    /// who went offline.
    mutating func replaceConnections(of node: NodeID, with live: [ConnectionRecord]) -> PresenceChanges {
        var changes = PresenceChanges()
        var liveIDs = Set<String>()
        for record in live where record.node == node {
            liveIDs.insert(record.connection.rawValue)
            let user = record.client.rawValue
            guard connections[user]?[record.connection.rawValue] == nil else { continue }
            connections[user, default: [:]][record.connection.rawValue] = record
            if connections[user]?.count == 1 { changes.online.append(record) }
        }
        for (user, records) in connections {
            for (id, record) in records where record.node == node && !liveIDs.contains(id) {
                connections[user]?[id] = nil
                if connections[user]?.isEmpty == true {
                    connections[user] = nil
                    changes.offline.append(record)
                }
            }
        }
        changes.online.sort { $0.client < $1.client }
        changes.offline.sort { $0.client < $1.client }
        return changes
    }

    mutating func add(_ user: String, to channel: String) {
        members[channel, default: []].insert(user)
        channelsOf[user, default: []].insert(channel)
    }

    mutating func remove(_ user: String, from channel: String) {
        members[channel]?.remove(user)
        if members[channel]?.isEmpty == true { members[channel] = nil }
        channelsOf[user]?.remove(channel)
        if channelsOf[user]?.isEmpty == true { channelsOf[user] = nil }
    }

    /// Sorted elements of `items` greater than `after`, at most `limit`.
    static func page<S: Sequence>(of items: S, after: String?, limit: Int) -> [String] where S.Element == String {
        guard limit > 0 else { return [] }
        let candidates = after.map { cursor in items.filter { $0 > cursor } } ?? Array(items)
        return Array(candidates.sorted().prefix(limit))
    }
}
