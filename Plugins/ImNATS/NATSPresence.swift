import Foundation
public import ImBackplane
public import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// ``Presence`` in JetStream KV (nats-server 2.9+ with `-js`), in three buckets under the
/// configuration's prefix:
///
/// - `<prefix>_connections` (in memory; rebuilt by the nodes after a NATS restart):
///   `u.<user>` holds the user's connections (node, connection, epoch, meta), so a user's count
///   changes in one compare-and-set write of one key, atomic across nodes; `l.<node>` is a
///   node's lease (its time to live; it ends at the entry's server timestamp plus that).
/// - `<prefix>_channels` (on disk; survives a restart): `c.<user>` lists the user's channels,
///   `m.<channel>.<user>` marks a member (so a channel's members are the keys under
///   `m.<channel>.`).
/// - `<prefix>_tokens` (on disk, values live a day at most): `t.<id>` is a claimed token.
///
/// Every id is one key token (``SubjectToken`` with `=` escapes), so no name can reach into
/// another's keys. Writes that must not race carry the revision they read
/// (`Nats-Expected-Last-Subject-Sequence`) and are retried on a conflict. Times compare on the
/// server's clock (entries' timestamps), never this process's. docs/backplanes.md maps each
/// operation and its round trips.
///
/// **Epochs.** A connection record carries the revision of its node's lease when it was
/// written. A reaper removes only records at or below the revision it marked the expired lease
/// with, and a node told its lease was gone re-writes its records with its new lease's
/// revision, so a paused node that comes back while another node reaps it keeps the
/// connections it re-registered.
public final class NATSPresence: Presence {
    let client: NATSClient
    private let ownsClient: Bool
    private let requests: NATSRequests
    let connections: NATSKeyValue
    let channelDirectory: NATSKeyValue
    let tokens: NATSKeyValue
    /// Every user's connections in this process, for ``nodes(of:)`` (started by its first call).
    let replica: ConnectionReplica
    private let logger: Logger
    /// The connects count (``NATSClient/Events/connects``) the buckets were last set up at.
    private let setUpAt = Atomic<Int>(0)
    /// Each node's epoch: the revision of the lease that began its current lease.
    private let epochs = Mutex<[NodeID: UInt64]>([:])
    /// The last lease this process wrote for each node: its revision, when the write was
    /// acknowledged (this process's clock) and for how long.
    private let leases = Mutex<[NodeID: (revision: UInt64, storedBy: ContinuousClock.Instant, ttl: Duration)]>([:])
    /// How many times a compare-and-set write is retried after conflicts before failing.
    static let attempts = 64

    /// A presence with a connection of its own to the servers `configuration` names.
    public convenience init(configuration: NATSConfiguration, logger: Logger) throws(BackplaneError) {
        try self.init(
            client: NATSClient(configuration: configuration, logger: logger), ownsClient: true, logger: logger)
    }

    /// A presence on `client`'s connection (shared with a ``NATSBus``, which runs it).
    init(
        client: NATSClient, ownsClient: Bool, logger: Logger, markerLinger: Duration = .seconds(60)
    ) throws(BackplaneError) {
        self.client = client
        self.ownsClient = ownsClient
        self.logger = logger
        let requests = try NATSRequests(client: client)
        self.requests = requests
        let prefix = client.configuration.prefix
        connections = NATSKeyValue(
            bucket: prefix + "_connections", persistent: false, maximumAge: nil, requests: requests, client: client,
            markerLinger: markerLinger)
        replica = ConnectionReplica(client: client, bucket: prefix + "_connections")
        channelDirectory = NATSKeyValue(
            bucket: prefix + "_channels", persistent: true, maximumAge: nil, requests: requests, client: client)
        tokens = NATSKeyValue(
            bucket: prefix + "_tokens", persistent: true, maximumAge: Duration.claimTTLRange.upperBound,
            requests: requests, client: client)
    }

    public var health: BackplaneHealth {
        let connection = client.health
        guard connection.isUp else { return connection }
        return setUpAt.load(ordering: .acquiring) == client.events.connects.load(ordering: .acquiring)
            ? .up : .down("nats: presence buckets not set up yet")
    }

    /// Sets the buckets up as soon as NATS is reachable (and again after each reconnect, since
    /// a restarted server can lose the in-memory bucket), and, when this presence owns its
    /// connection, checks it with a PING every second. Throws when the first server reached has
    /// no JetStream, so a node stops at start with that message.
    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            var everSetUp = false
            var noJetStreamSince: ContinuousClock.Instant?
            let clock = ContinuousClock()
            while !Task.isCancelled {
                if self.ownsClient { await self.client.checkHealth() }
                if self.client.health.isUp {
                    do {
                        try await self.setUp()
                        everSetUp = true
                        noJetStreamSince = nil
                    } catch let error as BackplaneError {
                        if !everSetUp, case .unavailable(let reason) = error,
                            reason.contains("JetStream does not answer")
                        {
                            let since = noJetStreamSince ?? clock.now
                            noJetStreamSince = since
                            if clock.now - since > .seconds(5) {
                                throw BackplaneError.unavailable(
                                    "nats at \(self.client.configuration.servers.joined(separator: ",")) has no JetStream: "
                                        + "start nats-server with -js (the NATS backplane keeps presence in JetStream KV)"
                                )
                            }
                        }
                        self.logger.debug("nats presence not set up yet: \(error)")
                    }
                }
                try? await Task.sleep(for: everSetUp ? .seconds(1) : .milliseconds(200))
            }
        }
        replica.stop()
        if ownsClient { client.close() }
    }

    /// Creates the buckets if this connection has not yet since it last (re)connected.
    func setUp() async throws(BackplaneError) {
        let connects = client.events.connects.load(ordering: .acquiring)
        guard setUpAt.load(ordering: .acquiring) != connects else { return }
        try await connections.create()
        try await channelDirectory.create()
        try await tokens.create()
        setUpAt.store(connects, ordering: .releasing)
        replica.reload()
    }

    /// Sets up when needed, then runs `body`; when JetStream says nobody serves a bucket (a
    /// restarted server lost it), sets up again and retries once.
    func withBuckets<T>(_ body: () async throws(BackplaneError) -> T) async throws(BackplaneError) -> T {
        try await setUp()
        do {
            return try await body()
        } catch .unavailable(let reason) where reason.contains("no JetStream answered") {
            setUpAt.store(-1, ordering: .releasing)
            try await setUp()
            return try await body()
        }
    }

    // MARK: Connections

    public func connect(_ connection: ConnectionRecord) async throws -> Int? {
        let stored = StoredConnection(connection, epoch: epoch(of: connection.node))
        let key = Keys.user(connection.client)
        return try await withBuckets { () throws(BackplaneError) -> Int? in
            // Most connects are a user's first: try to create the key outright (one round trip).
            if try await connections.write([.put(key: key, value: try Self.encode([stored]), expected: 0)])[0]
                != .conflict
            {
                return 1
            }
            return try await modify(connections, keys: [key], as: StoredConnection.self) { _, list -> Int? in
                guard !list.contains(where: { $0.connection == stored.connection }) else { return nil }
                list.append(stored)
                return list.count
            }[key] ?? nil
        }
    }

    public func disconnect(_ connection: ConnectionRecord) async throws -> Int? {
        let key = Keys.user(connection.client)
        return try await withBuckets { () throws(BackplaneError) -> Int? in
            try await modify(connections, keys: [key], as: StoredConnection.self) { _, list -> Int? in
                guard let index = list.firstIndex(where: { $0.connection == connection.connection.rawValue }) else {
                    return nil
                }
                list.remove(at: index)
                return list.count
            }[key] ?? nil
        }
    }

    public func nodes(of users: [ClientID]) async throws -> [ClientID: Set<NodeID>] {
        var unique: [ClientID] = []
        var seen = Set<ClientID>()
        for user in users where seen.insert(user).inserted { unique.append(user) }
        replica.start()
        return try await withBuckets { () throws(BackplaneError) -> [ClientID: Set<NodeID>] in
            if replica.isLoaded, await replica.catchUp(to: try await connections.lastSequence()) {
                return replica.nodes(of: unique)
            }
            let entries = try await connections.get(unique.map(Keys.user))
            var located: [ClientID: Set<NodeID>] = [:]
            for (user, entry) in zip(unique, entries) {
                guard let entry, !entry.isDeleted else { continue }
                let list = try Self.decode(StoredConnection.self, entry.value)
                if !list.isEmpty { located[user] = Set(list.map { NodeID(rawValue: $0.node) }) }
            }
            return located
        }
    }

    public func onlineUsers(after: ClientID?, limit: Int) async throws -> [ClientID] {
        guard limit > 0 else { return [] }
        return try await withBuckets { () throws(BackplaneError) -> [ClientID] in
            let users = try await connections.scan("u.*", keysOnly: true).compactMap { Keys.user(from: $0.key) }
            return page(of: users, after: after, limit: limit)
        }
    }

    public func replaceConnections(of node: NodeID, with live: [ConnectionRecord]) async throws -> PresenceChanges {
        try await withBuckets { () throws(BackplaneError) -> PresenceChanges in
            let epoch = epoch(of: node)
            var wanted: [String: [StoredConnection]] = [:]
            for record in live where record.node == node {
                wanted[Keys.user(record.client), default: []].append(StoredConnection(record, epoch: epoch))
            }
            var changes = PresenceChanges()
            // Adds first (and re-writes records of an older epoch), so nobody kept goes offline.
            let added = try await modify(connections, keys: Array(wanted.keys), as: StoredConnection.self) {
                key, list -> ConnectionRecord? in
                let wasOffline = list.isEmpty
                for record in wanted[key] ?? [] {
                    list.removeAll { $0.connection == record.connection }
                    list.append(record)
                }
                return wasOffline ? wanted[key]?.first.flatMap { $0.record(of: Keys.user(from: key)) } : nil
            }
            changes.online = added.values.compactMap { $0 }.sorted { $0.client < $1.client }
            let liveIDs = Set(wanted.values.joined().map(\.connection))
            changes.offline = try await removeConnections {
                $0.node == node.rawValue && !liveIDs.contains($0.connection)
            }
            return changes
        }
    }

    // MARK: Leases

    public func renewLease(of node: NodeID, ttl: Duration) async throws -> Bool {
        let key = Keys.lease(node)
        let milliseconds = ttl.clamped(to: Duration.claimTTLRange).wholeMilliseconds
        let value = Array(String(milliseconds).utf8)
        let clock = ContinuousClock()
        return try await withBuckets { () throws(BackplaneError) -> Bool in
            // One round trip in the common case: rewrite the lease this process wrote last, if
            // nobody touched it since (a reaper's mark, a removal, another process change it;
            // so its connections are all still registered). It was live if less than its ttl
            // passed between that write's acknowledgement and this one's, on this process's
            // clock (the server's time between the two writes differs by less than a round trip).
            if let last = leases.withLock({ $0[node] }),
                case .stored(let revision) = try await connections.write([
                    .put(key: key, value: value, expected: last.revision)
                ])[0]
            {
                let now = clock.now
                let live = now - last.storedBy < last.ttl
                leases.withLock { $0[node] = (revision, now, ttl) }
                if !live { epochs.withLock { $0[node] = revision } }
                return live
            }
            // A first renewal, or the lease is not the one this process wrote: not live.
            guard case .stored(let revision) = try await connections.write([.put(key: key, value: value)])[0] else {
                throw BackplaneError.protocolViolation("nats: an unconditional lease write conflicted")
            }
            leases.withLock { $0[node] = (revision, clock.now, ttl) }
            epochs.withLock { $0[node] = revision }
            return false
        }
    }

    public func reapExpiredNodes() async throws -> [ConnectionRecord] {
        try await withBuckets { () throws(BackplaneError) -> [ConnectionRecord] in
            let leases = try await connections.scan("l.*", keysOnly: false)
            guard !leases.isEmpty else { return [] }
            let now = try await serverNow()
            // An expired lease, or a reaping mark another reaper left over 10 s ago (it died).
            let expired = leases.filter { lease in
                if lease.value == Self.reaping { return lease.created + 10_000_000_000 <= now }
                return lease.leaseEnd.map { $0 <= now } ?? false
            }
            guard !expired.isEmpty else { return [] }
            // Mark each lease as being reaped, unless its node renewed meanwhile.
            let marks = try await connections.write(
                expired.map { .put(key: $0.key, value: Self.reaping, expected: $0.revision) })
            var bounds: [String: UInt64] = [:]
            for (lease, mark) in zip(expired, marks) {
                guard case .stored(let revision) = mark, let node = Keys.node(fromLease: lease.key) else { continue }
                bounds[node] = revision
            }
            guard !bounds.isEmpty else { return [] }
            let offline = try await removeConnections { record in
                bounds[record.node].map { record.epoch <= $0 } ?? false
            }
            _ = try await connections.write(
                zip(expired, marks).compactMap { lease, mark in
                    guard case .stored(let revision) = mark else { return nil }
                    return .delete(key: lease.key, expected: revision)
                })
            return offline
        }
    }

    public func removeNode(_ node: NodeID) async throws -> [ConnectionRecord] {
        leases.withLock { _ = $0.removeValue(forKey: node) }
        return try await withBuckets { () throws(BackplaneError) -> [ConnectionRecord] in
            _ = try await connections.write([.delete(key: Keys.lease(node))])
            return try await removeConnections { $0.node == node.rawValue }
        }
    }

    // MARK: Tokens

    public func claimToken(id: String, ttl: Duration) async throws -> Bool {
        let key = "t." + Keys.token(id)
        let value = Array(String(ttl.clamped(to: Duration.claimTTLRange).wholeMilliseconds).utf8)
        return try await withBuckets { () throws(BackplaneError) -> Bool in
            var expected: UInt64 = 0
            for _ in 0..<Self.attempts {
                if try await tokens.write([.put(key: key, value: value, expected: expected)])[0] != .conflict {
                    return true
                }
                guard let entry = try await tokens.get([key])[0] else {
                    expected = 0
                    continue
                }
                if !entry.isDeleted, let end = entry.leaseEnd, end > (try await serverNow()) { return false }
                expected = entry.revision
            }
            throw BackplaneError.unavailable("nats: claiming a token conflicted \(Self.attempts) times")
        }
    }

    // MARK: Helpers

    /// A lease value that says a reaper is removing the node's connections.
    static let reaping = Array("reaping".utf8)

    func epoch(of node: NodeID) -> UInt64 { epochs.withLock { $0[node] ?? 0 } }

    /// The server's clock now: the timestamp of a write made for the purpose.
    func serverNow() async throws(BackplaneError) -> Int64 {
        _ = try await connections.write([.put(key: "clock", value: [])])
        guard let entry = try await connections.get(["clock"])[0] else {
            throw BackplaneError.unavailable("nats: the clock key vanished right after it was written")
        }
        return entry.created
    }

    /// Removes every stored connection `matching` says to remove, from every user; returns one
    /// record for each user left with none.
    func removeConnections(matching: @escaping (StoredConnection) -> Bool) async throws(BackplaneError)
        -> [ConnectionRecord]
    {
        let candidates = try await connections.scan("u.*", keysOnly: false).filter { entry in
            (try? Self.decode(StoredConnection.self, entry.value))?.contains(where: matching) == true
        }
        let removed = try await modify(connections, keys: candidates.map(\.key), as: StoredConnection.self) {
            key, list -> ConnectionRecord? in
            guard let gone = list.first(where: matching) else { return nil }
            list.removeAll(where: matching)
            return list.isEmpty ? gone.record(of: Keys.user(from: key)) : nil
        }
        return removed.values.compactMap { $0 }.sorted { $0.client < $1.client }
    }

    /// Changes the lists under `keys` with `change` (given the key and the list, empty for a
    /// missing key), writing each changed list only if nobody wrote it since it was read
    /// (an emptied list deletes its key), and retrying conflicts; returns what `change`
    /// returned for each key, from the attempt that was written.
    func modify<Element: Codable & Sendable, Result>(
        _ store: NATSKeyValue, keys: [String], as element: Element.Type,
        _ change: (String, inout [Element]) -> Result
    ) async throws(BackplaneError) -> [String: Result] {
        var results: [String: Result] = [:]
        var pending = Array(Set(keys))
        for _ in 0..<Self.attempts {
            guard !pending.isEmpty else { return results }
            let entries = try await store.get(pending)
            var writes: [NATSKeyValue.Write] = []
            var written: [(String, Result)] = []
            for (key, entry) in zip(pending, entries) {
                var before: [Element] = []
                if let entry, !entry.isDeleted { before = try Self.decode(Element.self, entry.value) }
                var after = before
                let result = change(key, &after)
                if Self.same(before, after) {
                    results[key] = result
                    continue
                }
                if after.isEmpty {
                    writes.append(.delete(key: key, expected: entry?.revision ?? 0))
                } else {
                    writes.append(.put(key: key, value: try Self.encode(after), expected: entry?.revision ?? 0))
                }
                written.append((key, result))
            }
            let outcomes = try await store.write(writes)
            pending = []
            for ((key, result), outcome) in zip(written, outcomes) {
                if outcome == .conflict { pending.append(key) } else { results[key] = result }
            }
        }
        guard pending.isEmpty else {
            throw BackplaneError.unavailable(
                "nats: \(pending.count) keys still conflicted after \(Self.attempts) attempts")
        }
        return results
    }

    private static func same<Element: Encodable>(_ left: [Element], _ right: [Element]) -> Bool {
        left.count == right.count && (try? encode(left)) == (try? encode(right))
    }

    static func encode<Element: Encodable>(_ list: [Element]) throws(BackplaneError) -> [UInt8] {
        do { return Array(try JSONEncoder().encode(list)) } catch {
            throw BackplaneError.protocolViolation("nats: cannot encode a value: \(error)")
        }
    }

    static func decode<Element: Decodable>(_ type: Element.Type, _ bytes: [UInt8]) throws(BackplaneError) -> [Element] {
        guard !bytes.isEmpty else { return [] }
        do { return try JSONDecoder().decode([Element].self, from: Data(bytes)) } catch {
            throw BackplaneError.protocolViolation("nats: a stored value is not what this version writes: \(error)")
        }
    }
}

/// One connection as stored in its user's key.
struct StoredConnection: Codable, Sendable, Equatable {
    var node: String
    var connection: String
    /// The revision of the node's lease when this was written (see ``NATSPresence``).
    var epoch: UInt64
    var meta: String?

    enum CodingKeys: String, CodingKey {
        case node = "n"
        case connection = "c"
        case epoch = "e"
        case meta = "m"
    }

    init(_ record: ConnectionRecord, epoch: UInt64) {
        node = record.node.rawValue
        connection = record.connection.rawValue
        self.epoch = epoch
        meta = record.meta
    }

    /// The record of `user`'s connection (nil without a user).
    func record(of user: ClientID?) -> ConnectionRecord? {
        user.map {
            ConnectionRecord(
                client: $0, node: NodeID(rawValue: node), connection: ConnectionID(rawValue: connection), meta: meta)
        }
    }
}

extension NATSKeyValue.Entry {
    /// When a lease or token claim ends (its server timestamp plus the milliseconds it holds),
    /// or `nil` when the value is not a number of milliseconds.
    var leaseEnd: Int64? {
        // Written by this plugin (at most a day); clamped so a damaged value cannot overflow.
        Int64(String(decoding: value, as: UTF8.self)).map {
            created &+ min(max($0, 0), Duration.claimTTLRange.upperBound.wholeMilliseconds) * 1_000_000
        }
    }
}

/// Sorted elements of `items` greater than `after`, at most `limit`.
func page<Element: Comparable & Hashable>(of items: [Element], after: Element?, limit: Int) -> [Element] {
    guard limit > 0 else { return [] }
    let candidates = after.map { cursor in items.filter { $0 > cursor } } ?? items
    return Array(Set(candidates).sorted().prefix(limit))
}
