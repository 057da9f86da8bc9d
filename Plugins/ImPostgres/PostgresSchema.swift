import Logging
import PostgresNIO

/// The plugin's tables, created at start by versioned migrations that any number of nodes may
/// run at once (a transaction-scoped advisory lock lets one apply each version).
///
/// Connections, the online counts and leases are `UNLOGGED`: nodes register their connections
/// again after a restart, so they need no write-ahead log (cheaper writes; a crash empties
/// them). Memberships, used tokens and large bus payloads are ordinary tables: memberships are
/// the back-end's data and must survive a restart.
struct PostgresSchema: Sendable {
    let name: String

    /// Every migration, in order; version `n` is `migrations[n - 1]`.
    var migrations: [[String]] {
        let s = name
        return [
            [
                """
                CREATE UNLOGGED TABLE \(s).connections (
                    client text COLLATE "C" NOT NULL, connection text COLLATE "C" NOT NULL,
                    node text COLLATE "C" NOT NULL, meta text, PRIMARY KEY (client, connection))
                """,
                "CREATE INDEX ON \(s).connections (node)",
                """
                CREATE UNLOGGED TABLE \(s).online (client text COLLATE "C" PRIMARY KEY, count integer NOT NULL)
                """,
                """
                CREATE UNLOGGED TABLE \(s).leases (node text COLLATE "C" PRIMARY KEY, expires timestamptz NOT NULL)
                """,
                """
                CREATE TABLE \(s).members (
                    channel text COLLATE "C" NOT NULL, client text COLLATE "C" NOT NULL, PRIMARY KEY (channel, client))
                """,
                "CREATE INDEX ON \(s).members (client, channel)",
                "CREATE TABLE \(s).tokens (id text COLLATE \"C\" PRIMARY KEY, expires timestamptz NOT NULL)",
                """
                CREATE TABLE \(s).payloads (
                    id bigserial PRIMARY KEY, created timestamptz NOT NULL DEFAULT now(), body bytea NOT NULL)
                """,
            ]
        ]
    }

    /// Brings the schema to the newest version; throws with the server's message when the
    /// database refuses (no permission to create the schema or tables, say).
    func migrate(on client: PostgresClient, logger: Logger) async throws {
        // Usually the schema is current already: one read, and no turn to wait for.
        if await isCurrent(on: client, logger: logger) { return }
        // One transaction under an advisory lock: nodes starting together take turns, and the
        // second finds the work done (creating the same table at once would otherwise fail).
        try await client.withTransaction(logger: logger) { connection in
            let lock = "\(name).migrations"
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(lock)))", logger: logger)
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(name)"), logger: logger)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: "CREATE TABLE IF NOT EXISTS \(name).migrations "
                        + "(version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"),
                logger: logger)
            var applied = Set<Int>()
            let rows = try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT version FROM \(name).migrations"), logger: logger)
            for try await version in rows.decode(Int.self) { applied.insert(version) }
            for (index, statements) in migrations.enumerated() where !applied.contains(index + 1) {
                for statement in statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: "INSERT INTO \(name).migrations (version) VALUES ($1)", binds: binds(index + 1)),
                    logger: logger)
                logger.info("postgres schema \(name) migrated to version \(index + 1)")
            }
        }
    }

    /// Whether every migration is applied (`false` too when that cannot be read: the locked
    /// path then creates what is missing, or fails with the reason).
    private func isCurrent(on client: PostgresClient, logger: Logger) async -> Bool {
        do {
            let rows = try await client.query(
                PostgresQuery(unsafeSQL: "SELECT coalesce(max(version), 0) FROM \(name).migrations"), logger: logger)
            for try await version in rows.decode(Int.self) { return version >= migrations.count }
        } catch {
            return false
        }
        return false
    }

    private func binds(_ version: Int) -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(version)
        return bindings
    }
}
