import ImBackplane
import Synchronization

/// What one presence check works with: the directory, and the ids it made under a random prefix.
final class PresenceHarness: ConformanceHarness {
    /// Ids one check made, to clean up after it.
    private struct Created {
        var users: Set<ClientID> = []
        var nodes: Set<NodeID> = []
        var channels: Set<String> = []
    }

    /// The directory under test.
    let presence: any Presence
    /// The check's name, for failures.
    let check: String
    /// How long to wait for an expiration.
    let timeout: Duration
    /// How long the directory may take to serve again after a backend restart.
    let reconnectTimeout: Duration
    /// Restarts the backend, if the plugin can.
    let restartBackend: (@Sendable () async throws -> Void)?
    /// Starts every id of this check: `conf-<random hex>`.
    let prefix: String
    private let created = Mutex(Created())

    /// A harness for `check` on `presence`.
    init(
        presence: any Presence, check: String, timeout: Duration, reconnectTimeout: Duration,
        restartBackend: (@Sendable () async throws -> Void)?
    ) {
        self.presence = presence
        self.check = check
        self.timeout = timeout
        self.reconnectTimeout = reconnectTimeout
        self.restartBackend = restartBackend
        self.prefix = "conf-" + randomHex(bytes: 6)
    }

    // MARK: Ids

    /// The user `name` under this check's prefix, joined by `separator`.
    func user(_ name: String, separator: String = "-") -> ClientID {
        let user = ClientID(rawValue: prefix + separator + name)
        created.withLock { _ = $0.users.insert(user) }
        return user
    }

    /// `count` users named `<base>001`, `<base>002`, … (ascending in the order returned).
    func users(_ count: Int, named base: String = "u") -> [ClientID] {
        (1...count).map { user(base + padded($0)) }
    }

    /// The channel `name` under this check's prefix, joined by `separator`.
    func channel(_ name: String, separator: String = "-") -> String {
        let channel = prefix + separator + name
        created.withLock { _ = $0.channels.insert(channel) }
        return channel
    }

    /// The node `name` under this check's prefix, with a lease of ten minutes so that nobody's
    /// `reapExpiredNodes()` takes its connections during the check.
    func node(_ name: String) async throws -> NodeID {
        let node = NodeID(rawValue: prefix + "-" + name)
        created.withLock { _ = $0.nodes.insert(node) }
        _ = try await renewLease(of: node, ttl: .seconds(600))
        return node
    }

    /// The node `name` under this check's prefix, without a lease (removed at the end).
    func nodeWithoutLease(_ name: String) -> NodeID {
        let node = NodeID(rawValue: prefix + "-" + name)
        created.withLock { _ = $0.nodes.insert(node) }
        return node
    }

    /// A connection of `user` on `node`, its id and meta made from `tag`.
    func record(_ user: ClientID, on node: NodeID, _ tag: String) -> ConnectionRecord {
        ConnectionRecord(
            client: user, node: node, connection: ConnectionID(rawValue: prefix + "-conn-" + tag),
            meta: "meta-" + tag)
    }

    /// Whether `id` was made by this check.
    func isOwn(_ id: String) -> Bool { id.hasPrefix(prefix) }

    /// Removes what this check made (best effort; errors are ignored).
    func cleanUp() async {
        let made = created.withLock { $0 }
        for node in made.nodes { _ = try? await presence.removeNode(node) }
        for channel in made.channels { _ = try? await presence.clear(channel) }
        for user in made.users {
            if let channels = try? await presence.channels(of: user), !channels.isEmpty {
                try? await presence.leave(user, channels: channels)
            }
        }
    }

    // MARK: Failures

    /// A failure of this check; ids are shown without the random prefix.
    func failure(_ message: String) -> ConformanceFailure {
        let short = message.replacing(prefix + "-", with: "").replacing(prefix, with: "")
        return ConformanceFailure(check: check, message: short + " [ids shown without the prefix '\(prefix)']")
    }

    /// Requires `actual == expected`; `what` names the value.
    func expect<T: Equatable>(_ actual: T, _ expected: T, _ what: String) throws {
        guard actual != expected else { return }
        throw failure("\(what): expected \(show(expected)), got \(show(actual))")
    }

    /// Pages through a list from `start` with `limit`, keeping this check's items: checks each
    /// page is ascending, after its cursor and at most `limit` long; returns the own items and
    /// how many of them each page held.
    func pageOwn<T: Comparable>(
        _ what: String, from start: T, limit: Int, own: (T) -> Bool,
        _ fetch: (T, Int) async throws -> [T]
    ) async throws -> (items: [T], pageSizes: [Int]) {
        var cursor = start
        var items: [T] = []
        var pageSizes: [Int] = []
        for _ in 0..<10_000 {
            let page = try await fetch(cursor, limit)
            let after = cursor == start ? "the check's prefix" : show(cursor)
            guard page.count <= limit else {
                throw failure("\(what) after \(after) with limit \(limit) returned \(page.count) items")
            }
            guard zip(page, page.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw failure("\(what) after \(after) returned \(page), not strictly ascending")
            }
            if let first = page.first, !(first > cursor) {
                throw failure(
                    "\(what) after \(after) returned \(show(first)), which is not after the cursor (it is exclusive)")
            }
            let mine = page.filter(own)
            if !mine.isEmpty {
                items += mine
                pageSizes.append(mine.count)
            }
            guard let last = page.last, page.count == limit, mine.count == page.count else { return (items, pageSizes) }
            cursor = last
        }
        throw failure("\(what) never ended: 10,000 pages")
    }

    // MARK: The directory's operations, with their arguments named in failures

    /// `presence.connect`.
    func connect(_ record: ConnectionRecord) async throws -> Int? {
        try await attempt("connect(\(describe(record)))") { try await presence.connect(record) }
    }

    /// `presence.disconnect`.
    func disconnect(_ record: ConnectionRecord) async throws -> Int? {
        try await attempt("disconnect(\(describe(record)))") { try await presence.disconnect(record) }
    }

    /// `presence.nodes(of:)`.
    func nodes(of users: [ClientID]) async throws -> [ClientID: Set<NodeID>] {
        try await attempt("nodes(of: \(users.count) users)") { try await presence.nodes(of: users) }
    }

    /// `presence.onlineUsers(after:limit:)`.
    func onlineUsers(after: ClientID?, limit: Int) async throws -> [ClientID] {
        try await attempt("onlineUsers(after: \(show(after)), limit: \(limit))") {
            try await presence.onlineUsers(after: after, limit: limit)
        }
    }

    /// `presence.renewLease(of:ttl:)`.
    @discardableResult
    func renewLease(of node: NodeID, ttl: Duration) async throws -> Bool {
        try await attempt("renewLease(of: \(node), ttl: \(ttl))") { try await presence.renewLease(of: node, ttl: ttl) }
    }

    /// `presence.replaceConnections(of:with:)`, keeping this check's records.
    func replaceConnections(of node: NodeID, with live: [ConnectionRecord]) async throws -> PresenceChanges {
        let changes = try await attempt("replaceConnections(of: \(node), with: \(live.count) records)") {
            try await presence.replaceConnections(of: node, with: live)
        }
        return PresenceChanges(
            online: changes.online.filter { isOwn($0.client.rawValue) },
            offline: changes.offline.filter { isOwn($0.client.rawValue) })
    }

    /// `presence.reapExpiredNodes()`, keeping this check's records.
    func reapExpiredNodes() async throws -> [ConnectionRecord] {
        try await attempt("reapExpiredNodes()") { try await presence.reapExpiredNodes() }
            .filter { isOwn($0.client.rawValue) }
    }

    /// `presence.removeNode(_:)`, keeping this check's records.
    func removeNode(_ node: NodeID) async throws -> [ConnectionRecord] {
        try await attempt("removeNode(\(node))") { try await presence.removeNode(node) }
            .filter { isOwn($0.client.rawValue) }
    }

    /// `presence.join(_:channels:)`.
    func join(_ user: ClientID, channels: [String]) async throws {
        try await attempt("join(\(user), channels: \(channels))") { try await presence.join(user, channels: channels) }
    }

    /// `presence.leave(_:channels:)`.
    func leave(_ user: ClientID, channels: [String]) async throws {
        try await attempt("leave(\(user), channels: \(channels))") {
            try await presence.leave(user, channels: channels)
        }
    }

    /// `presence.remove(_:from:)`.
    func remove(_ users: [ClientID], from channel: String) async throws {
        try await attempt("remove(\(users), from: \(channel))") { try await presence.remove(users, from: channel) }
    }

    /// `presence.clear(_:)`.
    func clear(_ channel: String) async throws -> [ClientID] {
        try await attempt("clear(\(channel))") { try await presence.clear(channel) }
    }

    /// `presence.channels(of:)`.
    func channels(of user: ClientID) async throws -> [String] {
        try await attempt("channels(of: \(user))") { try await presence.channels(of: user) }
    }

    /// `presence.members(of:after:limit:)`.
    func members(of channel: String, after: ClientID? = nil, limit: Int = 1_000) async throws -> [ClientID] {
        try await attempt("members(of: \(channel), after: \(show(after)), limit: \(limit))") {
            try await presence.members(of: channel, after: after, limit: limit)
        }
    }

    /// `presence.channelNames(after:limit:)`.
    func channelNames(after: String?, limit: Int) async throws -> [String] {
        try await attempt("channelNames(after: \(show(after)), limit: \(limit))") {
            try await presence.channelNames(after: after, limit: limit)
        }
    }

    /// `presence.stats(of:)`.
    func stats(of channel: String) async throws -> ChannelStats {
        try await attempt("stats(of: \(channel))") { try await presence.stats(of: channel) }
    }

    /// `presence.claimToken(id:ttl:)`.
    func claimToken(id: String, ttl: Duration) async throws -> Bool {
        try await attempt("claimToken(id: \(id), ttl: \(ttl))") { try await presence.claimToken(id: id, ttl: ttl) }
    }

    // MARK: Reading the directory

    /// This check's online users, paged from the prefix in pages of `limit`.
    func ownOnlineUsers(limit: Int = 100) async throws -> [ClientID] {
        try await pageOwn("onlineUsers", from: ClientID(rawValue: prefix), limit: limit, own: { isOwn($0.rawValue) }) {
            try await onlineUsers(after: $0, limit: $1)
        }.items
    }

    /// This check's channels with members, paged from the prefix in pages of `limit`.
    func ownChannelNames(limit: Int = 100) async throws -> [String] {
        try await pageOwn("channelNames", from: prefix, limit: limit, own: isOwn) {
            try await channelNames(after: $0, limit: $1)
        }.items
    }
}

/// A connection record for failures.
func describe(_ record: ConnectionRecord) -> String {
    "\(record.client)/\(record.connection) on \(record.node)"
}
