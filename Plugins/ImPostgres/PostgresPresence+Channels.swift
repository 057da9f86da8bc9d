public import ImBackplane

extension PostgresPresence {
    public func join(_ user: ClientID, channels: [String]) async throws {
        guard !channels.isEmpty else { return }
        let s = database.schema
        try await database.execute("join") {
            """
            INSERT INTO \(unescaped: s).members (channel, client) SELECT unnest(\(channels)::text[]), \(user.rawValue)
            ON CONFLICT DO NOTHING
            """
        }
    }

    public func leave(_ user: ClientID, channels: [String]) async throws {
        guard !channels.isEmpty else { return }
        let s = database.schema
        try await database.execute("leave") {
            "DELETE FROM \(unescaped: s).members WHERE client = \(user.rawValue) AND channel = ANY(\(channels))"
        }
    }

    public func remove(_ users: [ClientID], from channel: String) async throws {
        guard !users.isEmpty else { return }
        let s = database.schema
        let names = users.map(\.rawValue)
        try await database.execute("remove") {
            "DELETE FROM \(unescaped: s).members WHERE channel = \(channel) AND client = ANY(\(names))"
        }
    }

    public func clear(_ channel: String) async throws -> [ClientID] {
        let s = database.schema
        let removed: [String] = try await database.all("clear", String.self) {
            "DELETE FROM \(unescaped: s).members WHERE channel = \(channel) RETURNING client"
        }
        return removed.sorted().map(ClientID.init(rawValue:))
    }

    public func channels(of user: ClientID) async throws -> [String] {
        let s = database.schema
        return try await database.all("channels(of:)", String.self) {
            "SELECT channel FROM \(unescaped: s).members WHERE client = \(user.rawValue) ORDER BY channel"
        }
    }

    public func members(of channel: String, after: ClientID?, limit: Int) async throws -> [ClientID] {
        guard limit > 0 else { return [] }
        let s = database.schema
        return try await database.all("members", String.self) {
            """
            SELECT client FROM \(unescaped: s).members
            WHERE channel = \(channel) AND (\(after?.rawValue)::text IS NULL OR client > \(after?.rawValue))
            ORDER BY client LIMIT \(limit)
            """
        }.map(ClientID.init(rawValue:))
    }

    public func channelNames(after: String?, limit: Int) async throws -> [String] {
        guard limit > 0 else { return [] }
        let s = database.schema
        // A loose index scan: one index probe per distinct channel, not a read of every membership.
        return try await database.all("channelNames", String.self) {
            """
            WITH RECURSIVE names AS (
                (SELECT channel FROM \(unescaped: s).members
                 WHERE \(after)::text IS NULL OR channel > \(after) ORDER BY channel LIMIT 1)
                UNION ALL
                SELECT (SELECT m.channel FROM \(unescaped: s).members m WHERE m.channel > names.channel
                        ORDER BY m.channel LIMIT 1)
                FROM names WHERE names.channel IS NOT NULL)
            SELECT channel FROM names WHERE channel IS NOT NULL LIMIT \(limit)
            """
        }
    }

    public func stats(of channel: String) async throws -> ChannelStats {
        let s = database.schema
        let counts = try await database.first("stats", (Int, Int).self) {
            """
            SELECT count(*)::bigint, count(o.client)::bigint FROM \(unescaped: s).members m
            LEFT JOIN \(unescaped: s).online o ON o.client = m.client AND o.count > 0
            WHERE m.channel = \(channel)
            """
        }
        return ChannelStats(members: counts?.0 ?? 0, online: counts?.1 ?? 0)
    }
}
