public import ImBackplane

extension NATSPresence {
    public func join(_ user: ClientID, channels: [String]) async throws {
        guard !channels.isEmpty else { return }
        try await withBuckets { () throws(BackplaneError) in
            let key = Keys.channels(of: user)
            _ = try await modify(channelDirectory, keys: [key], as: String.self) { _, list in
                list = Array(Set(list).union(channels)).sorted()
            }
            try await check(channelDirectory.write(channels.map { .put(key: Keys.member(user, of: $0), value: []) }))
        }
    }

    public func leave(_ user: ClientID, channels: [String]) async throws {
        guard !channels.isEmpty else { return }
        try await withBuckets { () throws(BackplaneError) in
            let key = Keys.channels(of: user)
            let leaving = Set(channels)
            _ = try await modify(channelDirectory, keys: [key], as: String.self) { _, list in
                list.removeAll { leaving.contains($0) }
            }
            try await check(channelDirectory.write(channels.map { .delete(key: Keys.member(user, of: $0)) }))
        }
    }

    public func remove(_ users: [ClientID], from channel: String) async throws {
        guard !users.isEmpty else { return }
        try await withBuckets { () throws(BackplaneError) in try await remove(users, fromChannel: channel) }
    }

    public func clear(_ channel: String) async throws -> [ClientID] {
        try await withBuckets { () throws(BackplaneError) -> [ClientID] in
            let members = try await memberList(of: channel)
            try await remove(members, fromChannel: channel)
            return members
        }
    }

    public func channels(of user: ClientID) async throws -> [String] {
        try await withBuckets { () throws(BackplaneError) -> [String] in
            guard let entry = try await channelDirectory.get([Keys.channels(of: user)])[0], !entry.isDeleted else {
                return []
            }
            return try Self.decode(String.self, entry.value).sorted()
        }
    }

    public func members(of channel: String, after: ClientID?, limit: Int) async throws -> [ClientID] {
        guard limit > 0 else { return [] }
        return try await withBuckets { () throws(BackplaneError) -> [ClientID] in
            page(of: try await memberList(of: channel), after: after, limit: limit)
        }
    }

    public func channelNames(after: String?, limit: Int) async throws -> [String] {
        guard limit > 0 else { return [] }
        return try await withBuckets { () throws(BackplaneError) -> [String] in
            let names = try await channelDirectory.scan("m.*.*", keysOnly: true).compactMap {
                Keys.membership(from: $0.key)?.channel
            }
            return page(of: names, after: after, limit: limit)
        }
    }

    public func stats(of channel: String) async throws -> ChannelStats {
        try await withBuckets { () throws(BackplaneError) -> ChannelStats in
            let members = try await memberList(of: channel)
            let entries = try await connections.get(members.map(Keys.user))
            let online = entries.reduce(0) { count, entry in
                guard let entry, !entry.isDeleted, !entry.value.isEmpty else { return count }
                return count + 1
            }
            return ChannelStats(members: members.count, online: online)
        }
    }

    /// Every member of `channel`, ascending.
    func memberList(of channel: String) async throws(BackplaneError) -> [ClientID] {
        try await channelDirectory.scan(Keys.members(of: channel), keysOnly: true)
            .compactMap { Keys.membership(from: $0.key)?.user }.sorted()
    }

    /// Removes `users` from `channel`: from each user's list, then their member keys.
    func remove(_ users: [ClientID], fromChannel channel: String) async throws(BackplaneError) {
        guard !users.isEmpty else { return }
        _ = try await modify(channelDirectory, keys: users.map(Keys.channels(of:)), as: String.self) { _, list in
            list.removeAll { $0 == channel }
        }
        try await check(channelDirectory.write(users.map { .delete(key: Keys.member($0, of: channel)) }))
    }

    /// Fails unless every unconditional write was stored.
    private func check(_ outcomes: [NATSKeyValue.Outcome]) throws(BackplaneError) {
        guard !outcomes.contains(.conflict) else {
            throw BackplaneError.protocolViolation("nats: an unconditional write conflicted")
        }
    }
}
