public import ImBackplane
public import Logging
import PostgresNIO
import ServiceLifecycle

/// ``Presence`` in PostgreSQL tables (``PostgresSchema``): every operation is one statement,
/// or one transaction where it touches several tables, so concurrent nodes never race a
/// read-modify-write. A user's connection count lives in `online`, changed by an upsert whose
/// row lock orders concurrent connects (1 and 2, never 1 and 1). Times are the server's
/// (`now()`).
public final class PostgresPresence: Presence {
    let database: PostgresDatabase
    private var s: String { database.schema }

    /// A presence on `database` (shared with a ``PostgresBus``).
    init(database: PostgresDatabase) {
        self.database = database
    }

    /// A presence with a pool of its own.
    public convenience init(configuration: PostgresConfiguration, logger: Logger) throws(BackplaneError) {
        self.init(database: try PostgresDatabase(configuration: configuration, logger: logger))
    }

    public var health: BackplaneHealth { database.health }

    /// Runs the pool, migrates the schema (once reachable), checks health every second and
    /// sweeps expired tokens and old payloads, until graceful shutdown.
    public func run() async throws {
        try await database.run()
    }

    // MARK: Connections

    public func connect(_ connection: ConnectionRecord) async throws -> Int? {
        try await database.first("connect", Int.self) {
            """
            WITH added AS (
                INSERT INTO \(unescaped: s).connections (client, connection, node, meta)
                VALUES (\(connection.client.rawValue), \(connection.connection.rawValue), \(connection.node.rawValue),
                        \(connection.meta))
                ON CONFLICT DO NOTHING RETURNING client)
            INSERT INTO \(unescaped: s).online (client, count) SELECT client, 1 FROM added
            ON CONFLICT (client) DO UPDATE SET count = \(unescaped: s).online.count + 1
            RETURNING count
            """
        }
    }

    public func disconnect(_ connection: ConnectionRecord) async throws -> Int? {
        let count = try await database.first("disconnect", Int.self) {
            """
            WITH removed AS (
                DELETE FROM \(unescaped: s).connections
                WHERE client = \(connection.client.rawValue) AND connection = \(connection.connection.rawValue)
                RETURNING client)
            UPDATE \(unescaped: s).online SET count = \(unescaped: s).online.count - 1 FROM removed
            WHERE \(unescaped: s).online.client = removed.client
            RETURNING \(unescaped: s).online.count
            """
        }
        if count == 0 {
            try await database.execute("disconnect") {
                "DELETE FROM \(unescaped: s).online WHERE client = \(connection.client.rawValue) AND count <= 0"
            }
        }
        return count
    }

    public func nodes(of users: [ClientID]) async throws -> [ClientID: Set<NodeID>] {
        guard !users.isEmpty else { return [:] }
        let names = Array(Set(users.map(\.rawValue)))
        let rows = try await database.all("nodes(of:)", (String, String).self) {
            "SELECT client, node FROM \(unescaped: s).connections WHERE client = ANY(\(names))"
        }
        var located: [ClientID: Set<NodeID>] = [:]
        for (client, node) in rows { located[ClientID(rawValue: client), default: []].insert(NodeID(rawValue: node)) }
        return located
    }

    public func onlineUsers(after: ClientID?, limit: Int) async throws -> [ClientID] {
        guard limit > 0 else { return [] }
        return try await database.all("onlineUsers", String.self) {
            """
            SELECT client FROM \(unescaped: s).online
            WHERE count > 0 AND (\(after?.rawValue)::text IS NULL OR client > \(after?.rawValue))
            ORDER BY client LIMIT \(limit)
            """
        }.map(ClientID.init(rawValue:))
    }

    public func replaceConnections(of node: NodeID, with live: [ConnectionRecord]) async throws -> PresenceChanges {
        let mine = live.filter { $0.node == node }
        let clients = mine.map(\.client.rawValue)
        let connections = mine.map(\.connection.rawValue)
        let metas = mine.map { $0.meta ?? "" }
        let hasMeta = mine.map { $0.meta != nil }
        let s = self.s
        return try await database.transaction("replaceConnections") { connection, logger in
            let added = try await PostgresDatabase.rows(
                on: connection, logger: logger, (String, String, String?).self,
                """
                WITH input AS (
                    SELECT * FROM unnest(\(clients)::text[], \(connections)::text[], \(metas)::text[], \(hasMeta)::bool[])
                    AS t(client, connection, meta, has_meta)),
                added AS (
                    INSERT INTO \(unescaped: s).connections (client, connection, node, meta)
                    SELECT client, connection, \(node.rawValue), CASE WHEN has_meta THEN meta END FROM input
                    ON CONFLICT DO NOTHING RETURNING client, connection, meta),
                counted AS (SELECT client, count(*)::integer AS n FROM added GROUP BY client),
                raised AS (
                    INSERT INTO \(unescaped: s).online (client, count) SELECT client, n FROM counted
                    ON CONFLICT (client) DO UPDATE SET count = \(unescaped: s).online.count + EXCLUDED.count
                    RETURNING client, count)
                SELECT DISTINCT ON (added.client) added.client, added.connection, added.meta
                FROM added JOIN raised USING (client) JOIN counted USING (client)
                WHERE raised.count = counted.n
                ORDER BY added.client, added.connection
                """)
            let removed = try await Self.drop(
                on: connection, logger: logger, schema: s, nodes: [node.rawValue], keeping: connections)
            return PresenceChanges(
                online: added.map {
                    ConnectionRecord(
                        client: ClientID(rawValue: $0.0), node: node, connection: ConnectionID(rawValue: $0.1),
                        meta: $0.2)
                },
                offline: removed)
        }
    }

    // MARK: Leases

    public func renewLease(of node: NodeID, ttl: Duration) async throws -> Bool {
        let milliseconds = ttl.clamped(to: Duration.claimTTLRange).wholeMilliseconds
        return try await database.first("renewLease", Bool.self) {
            """
            WITH old AS (SELECT expires > now() AS live FROM \(unescaped: s).leases WHERE node = \(node.rawValue)),
            renewed AS (
                INSERT INTO \(unescaped: s).leases (node, expires)
                VALUES (\(node.rawValue), now() + \(milliseconds) * interval '1 millisecond')
                ON CONFLICT (node) DO UPDATE SET expires = EXCLUDED.expires RETURNING 1)
            SELECT coalesce((SELECT live FROM old), false) FROM renewed
            """
        } ?? false
    }

    public func reapExpiredNodes() async throws -> [ConnectionRecord] {
        let s = self.s
        return try await database.transaction("reapExpiredNodes") { connection, logger in
            let expired = try await PostgresDatabase.rows(
                on: connection, logger: logger, String.self,
                "DELETE FROM \(unescaped: s).leases WHERE expires <= now() RETURNING node")
            guard !expired.isEmpty else { return [] }
            return try await Self.drop(on: connection, logger: logger, schema: s, nodes: expired, keeping: nil)
        }
    }

    public func removeNode(_ node: NodeID) async throws -> [ConnectionRecord] {
        let s = self.s
        return try await database.transaction("removeNode") { connection, logger in
            _ = try await PostgresDatabase.rows(
                on: connection, logger: logger, Int.self,
                "DELETE FROM \(unescaped: s).leases WHERE node = \(node.rawValue) RETURNING 1")
            return try await Self.drop(on: connection, logger: logger, schema: s, nodes: [node.rawValue], keeping: nil)
        }
    }

    /// Removes the connections of `nodes` (except those in `keeping`), lowers their users'
    /// counts and returns one record for each user left with none.
    private static func drop(
        on connection: PostgresConnection, logger: Logger, schema s: String, nodes: [String], keeping: [String]?
    ) async throws -> [ConnectionRecord] {
        let kept = keeping ?? []
        let gone = try await PostgresDatabase.rows(
            on: connection, logger: logger, (String, String, String, String?).self,
            """
            WITH removed AS (
                DELETE FROM \(unescaped: s).connections
                WHERE node = ANY(\(nodes)) AND NOT (connection = ANY(\(kept)))
                RETURNING client, connection, node, meta),
            counted AS (SELECT client, count(*)::integer AS n FROM removed GROUP BY client),
            lowered AS (
                UPDATE \(unescaped: s).online SET count = \(unescaped: s).online.count - counted.n FROM counted
                WHERE \(unescaped: s).online.client = counted.client
                RETURNING \(unescaped: s).online.client, \(unescaped: s).online.count)
            SELECT DISTINCT ON (removed.client) removed.client, removed.connection, removed.node, removed.meta
            FROM removed JOIN lowered USING (client) WHERE lowered.count <= 0
            ORDER BY removed.client, removed.connection
            """)
        if !gone.isEmpty {
            let clients = gone.map(\.0)
            _ = try await PostgresDatabase.rows(
                on: connection, logger: logger, Int.self,
                "DELETE FROM \(unescaped: s).online WHERE client = ANY(\(clients)) AND count <= 0 RETURNING 1")
        }
        return gone.map {
            ConnectionRecord(
                client: ClientID(rawValue: $0.0), node: NodeID(rawValue: $0.2),
                connection: ConnectionID(rawValue: $0.1),
                meta: $0.3)
        }
    }

    // MARK: Tokens

    public func claimToken(id: String, ttl: Duration) async throws -> Bool {
        let milliseconds = ttl.clamped(to: Duration.claimTTLRange).wholeMilliseconds
        return try await database.first("claimToken", Int.self) {
            """
            INSERT INTO \(unescaped: s).tokens (id, expires) VALUES (\(id), now() + \(milliseconds) * interval '1 millisecond')
            ON CONFLICT (id) DO UPDATE SET expires = EXCLUDED.expires WHERE \(unescaped: s).tokens.expires <= now()
            RETURNING 1
            """
        } != nil
    }
}

extension Duration {
    /// This duration in whole milliseconds.
    var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
