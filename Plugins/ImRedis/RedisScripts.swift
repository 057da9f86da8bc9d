import Crypto

/// A Lua script, run with `EVALSHA` (falling back to `EVAL` when the server lacks it).
struct RedisScript: Sendable {
    /// A name for errors.
    let name: String
    /// The Lua source.
    let source: String
    /// The SHA-1 of the source, as Redis names scripts.
    let sha: String

    init(_ name: String, _ source: String) {
        self.name = name
        self.source = source
        self.sha = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }.joined()
    }
}

/// The multi-key steps of ``RedisPresence``, each atomic on the server.
///
/// Key layout under the prefix `P`: `P:conn:{user}` (hash connection → node, meta),
/// `P:online` (sorted set of online users), `P:nodeconns:{node}` (set of connection\x1fuser),
/// `P:leases` (sorted set node → lease expiry in ms, Redis clock), `P:chans:{user}` (set of
/// channels), `P:members:{channel}` (sorted set of users), `P:channels` (sorted set of channel
/// names), `P:token:<id>` (used connect tokens, with expiry).
enum RedisScripts {
    static let connect = RedisScript(
        "connect",
        """
        if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return -1 end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        redis.call('SADD', KEYS[3], ARGV[4])
        local n = redis.call('HLEN', KEYS[1])
        if n == 1 then redis.call('ZADD', KEYS[2], 0, ARGV[3]) end
        return n
        """)

    static let disconnect = RedisScript(
        "disconnect",
        """
        if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return -1 end
        redis.call('SREM', KEYS[3], ARGV[4])
        local n = redis.call('HLEN', KEYS[1])
        if n == 0 then redis.call('ZREM', KEYS[2], ARGV[3]) end
        return n
        """)

    /// Sets the lease of ARGV[1] to end ARGV[2] ms from now (Redis clock); returns 1 when the
    /// node held a lease that had not run out, 0 otherwise.
    static let renewLease = RedisScript(
        "renewLease",
        """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
        if old and tonumber(old) > now then return 1 end
        return 0
        """)

    /// Makes node ARGV[2]'s connections exactly those given as (connection, user, stored value)
    /// triples from ARGV[3] on: adds the missing ones first, then removes the rest. Returns
    /// `on`|`off`, user, connection, stored value for each user who came online or went offline.
    static let replaceConnections = RedisScript(
        "replaceConnections",
        removeConnection + """
            local prefix, node = ARGV[1], ARGV[2]
            local setkey = prefix .. ':nodeconns:{' .. node .. '}'
            local live = {}
            local out = {}
            for i = 3, #ARGV, 3 do
              local conn, user, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
              local member = conn .. '\\31' .. user
              live[member] = true
              local hkey = prefix .. ':conn:{' .. user .. '}'
              redis.call('SADD', setkey, member)
              if redis.call('HSETNX', hkey, conn, value) == 1 and redis.call('HLEN', hkey) == 1 then
                redis.call('ZADD', KEYS[1], 0, user)
                table.insert(out, 'on'); table.insert(out, user); table.insert(out, conn); table.insert(out, value)
              end
            end
            for _, m in ipairs(redis.call('SMEMBERS', setkey)) do
              if not live[m] then
                redis.call('SREM', setkey, m)
                local user, conn, value = removeConnection(prefix, KEYS[1], m)
                if user then
                  table.insert(out, 'off'); table.insert(out, user); table.insert(out, conn); table.insert(out, value)
                end
              end
            end
            return out
            """)

    /// A Lua function the node scripts share: removes the connection a node-index member
    /// (connection\x1fuser) names from its user's hash; when that was the user's last, removes
    /// the user from the online index (`online`) and returns user, connection, stored value.
    private static let removeConnection = """
        local function removeConnection(prefix, online, member)
          local sep = string.find(member, '\\31', 1, true)
          if not sep then return nil end
          local conn = string.sub(member, 1, sep - 1)
          local user = string.sub(member, sep + 1)
          local hkey = prefix .. ':conn:{' .. user .. '}'
          local value = redis.call('HGET', hkey, conn)
          if not value then return nil end
          redis.call('HDEL', hkey, conn)
          if redis.call('HLEN', hkey) > 0 then return nil end
          redis.call('ZREM', online, user)
          return user, conn, value
        end

        """

    /// Drops the connections of expired nodes (ARGV[2] empty) or of one node (ARGV[2]); returns
    /// user, node, connection, stored value for each user left with no connection.
    static let dropNodes = RedisScript(
        "dropNodes",
        removeConnection + """
            local prefix = ARGV[1]
            local nodes
            if ARGV[2] == '' then
              local t = redis.call('TIME')
              local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
              nodes = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
            else
              nodes = {ARGV[2]}
            end
            local out = {}
            for _, node in ipairs(nodes) do
              local setkey = prefix .. ':nodeconns:{' .. node .. '}'
              for _, m in ipairs(redis.call('SMEMBERS', setkey)) do
                local user, conn, value = removeConnection(prefix, KEYS[2], m)
                if user then
                  table.insert(out, user)
                  table.insert(out, node)
                  table.insert(out, conn)
                  table.insert(out, value)
                end
              end
              redis.call('DEL', setkey)
              redis.call('ZREM', KEYS[1], node)
            end
            return out
            """)

    static let join = RedisScript(
        "join",
        """
        for i = 3, #ARGV do
          redis.call('SADD', KEYS[1], ARGV[i])
          redis.call('ZADD', ARGV[1] .. ':members:{' .. ARGV[i] .. '}', 0, ARGV[2])
          redis.call('ZADD', KEYS[2], 0, ARGV[i])
        end
        return 1
        """)

    /// Removes (user, channel) pairs given as ARGV[2], ARGV[3], …
    static let leave = RedisScript(
        "leave",
        """
        for i = 2, #ARGV, 2 do
          local user, channel = ARGV[i], ARGV[i + 1]
          redis.call('SREM', ARGV[1] .. ':chans:{' .. user .. '}', channel)
          local members = ARGV[1] .. ':members:{' .. channel .. '}'
          redis.call('ZREM', members, user)
          if redis.call('ZCARD', members) == 0 then redis.call('ZREM', KEYS[1], channel) end
        end
        return 1
        """)

    static let clear = RedisScript(
        "clear",
        """
        local users = redis.call('ZRANGE', KEYS[2], 0, -1)
        for _, user in ipairs(users) do redis.call('SREM', ARGV[1] .. ':chans:{' .. user .. '}', ARGV[2]) end
        redis.call('DEL', KEYS[2])
        redis.call('ZREM', KEYS[1], ARGV[2])
        return users
        """)

    /// ``RedisPresence/publish(_:toNodesUnder:)``: KEYS are the connection hashes of every
    /// message's users in order; ARGV[1] the node subject prefix, then per message its user
    /// count and its payload. Publishes each payload once per node holding any of its users;
    /// returns, per key, that user's nodes (a hash value's text before its first `\31`,
    /// `RedisPresence`'s separator).
    static let route = RedisScript(
        "route",
        """
        local found = {}
        local key = 0
        local argument = 2
        while argument < #ARGV do
          local count = tonumber(ARGV[argument])
          local payload = ARGV[argument + 1]
          argument = argument + 2
          local targets = {}
          local order = {}
          for _ = 1, count do
            key = key + 1
            local nodes = {}
            local seen = {}
            for _, value in ipairs(redis.call('HVALS', KEYS[key])) do
              local cut = string.find(value, '\\31', 1, true)
              local node = cut and string.sub(value, 1, cut - 1) or value
              if node ~= '' and not seen[node] then
                seen[node] = true
                nodes[#nodes + 1] = node
                if not targets[node] then
                  targets[node] = true
                  order[#order + 1] = node
                end
              end
            end
            found[key] = nodes
          end
          for _, node in ipairs(order) do redis.call('PUBLISH', ARGV[1] .. node, payload) end
        end
        return found
        """)
}
