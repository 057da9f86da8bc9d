import ImBackplane

/// The KV keys of ``NATSPresence``: every id becomes one key token (``SubjectToken`` with `=`
/// escapes), so a key's tokens can be split on `.` and read back.
enum Keys {
    /// Any id as one key token.
    static func token(_ text: String) -> String { SubjectToken.encode(text, escape: SubjectToken.keyEscape) }

    /// The id a key token holds.
    static func text(of token: Substring) -> String? { SubjectToken.decode(token, escape: SubjectToken.keyEscape) }

    /// `u.<user>`: the user's connections.
    static func user(_ user: ClientID) -> String { "u." + token(user.rawValue) }

    /// The user of a `u.<user>` key.
    static func user(from key: String) -> ClientID? {
        guard key.hasPrefix("u.") else { return nil }
        return text(of: key.dropFirst(2)).map(ClientID.init(rawValue:))
    }

    /// `l.<node>`: the node's lease.
    static func lease(_ node: NodeID) -> String { "l." + token(node.rawValue) }

    /// The node id of an `l.<node>` key.
    static func node(fromLease key: String) -> String? {
        guard key.hasPrefix("l.") else { return nil }
        return text(of: key.dropFirst(2))
    }

    /// `c.<user>`: the user's channels.
    static func channels(of user: ClientID) -> String { "c." + token(user.rawValue) }

    /// `m.<channel>.<user>`: `user` belongs to `channel`.
    static func member(_ user: ClientID, of channel: String) -> String {
        "m." + token(channel) + "." + token(user.rawValue)
    }

    /// `m.<channel>.*`: the members of `channel`.
    static func members(of channel: String) -> String { "m." + token(channel) + ".*" }

    /// The channel and user of an `m.<channel>.<user>` key.
    static func membership(from key: String) -> (channel: String, user: ClientID)? {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "m", let channel = text(of: parts[1]), let user = text(of: parts[2]) else {
            return nil
        }
        return (channel, ClientID(rawValue: user))
    }
}
