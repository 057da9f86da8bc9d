public import Foundation
import NIOCore

/// Where and how to reach Redis, parsed from a backplane URL:
/// `redis://[user[:password]@]host[:port][/db][?prefix=im&timeout=2&pool=2]` or `rediss://…` for TLS
/// (`&ca=/path/ca.pem` to trust a private certificate authority instead of the system's).
public struct RedisConfiguration: Sendable, Equatable {
    /// The server's host.
    public var host: String
    /// The server's port (default 6379).
    public var port: Int
    /// The ACL user, if any (`AUTH user password`).
    public var user: String?
    /// The password, if any.
    public var password: String?
    /// The database number for keys (`SELECT`); pub/sub is not per database.
    public var database: Int
    /// The prefix of every key this plugin writes (default `im`).
    public var keyPrefix: String
    /// How long one command may take before it fails and its connection is replaced.
    public var commandTimeout: Duration
    /// How many connections commands are spread over (pipelined on each); by default one per
    /// core (at least 2), so every event loop has a connection of its own (see `RedisClient`).
    public var poolSize: Int

    /// The default ``poolSize``: the number of cores (the event loops of the default group), 2 to 64.
    public static var defaultPoolSize: Int { min(64, max(2, System.coreCount)) }
    /// Whether to use TLS (`rediss://`).
    public var tls: Bool
    /// A PEM file of certificate authorities to trust for TLS (`ca=`), instead of the system's.
    public var certificateAuthorities: String?

    /// A configuration for a local Redis with the defaults.
    public init(
        host: String = "127.0.0.1", port: Int = 6379, user: String? = nil, password: String? = nil,
        database: Int = 0, keyPrefix: String = "im", commandTimeout: Duration = .seconds(2),
        poolSize: Int = RedisConfiguration.defaultPoolSize, tls: Bool = false
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.keyPrefix = keyPrefix
        self.commandTimeout = commandTimeout
        self.poolSize = poolSize
        self.tls = tls
    }

    /// Parses a `redis://` or `rediss://` URL.
    public init(url: URL) throws(RedisConfigurationError) {
        guard let scheme = url.scheme?.lowercased(), scheme == "redis" || scheme == "rediss" else {
            throw .invalid("scheme must be redis:// or rediss://")
        }
        guard let host = url.host, !host.isEmpty else { throw .invalid("missing host") }
        self.init(host: host, port: url.port ?? 6379, tls: scheme == "rediss")
        if let user = url.user, !user.isEmpty {
            if url.password == nil {
                password = user.removingPercentEncoding ?? user
            } else {
                self.user = user.removingPercentEncoding ?? user
            }
        }
        if let secret = url.password { password = secret.removingPercentEncoding ?? secret }
        let path = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !path.isEmpty {
            guard let database = Int(path), database >= 0 else {
                throw .invalid("database must be a number, got '\(path)'")
            }
            self.database = database
        }
        let items = URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems ?? []
        for item in items {
            let value = item.value ?? ""
            switch item.name {
            case "prefix":
                guard !value.isEmpty else { throw .invalid("prefix must not be empty") }
                keyPrefix = value
            case "timeout":
                guard let seconds = Double(value), seconds > 0 else {
                    throw .invalid("timeout must be positive seconds")
                }
                commandTimeout = .milliseconds(Int64(seconds * 1000))
            case "pool":
                guard let size = Int(value), (1...64).contains(size) else { throw .invalid("pool must be 1 to 64") }
                poolSize = size
            case "ca":
                guard tls else { throw .invalid("ca is for rediss:// (TLS) URLs") }
                guard !value.isEmpty else { throw .invalid("ca must name a PEM file") }
                certificateAuthorities = value
            default:
                throw .invalid("unknown parameter '\(item.name)' (known: prefix, timeout, pool, ca)")
            }
        }
    }
}

/// Why a Redis URL was refused.
public enum RedisConfigurationError: Error, Equatable, CustomStringConvertible {
    /// The URL is not a valid Redis backplane URL.
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let detail): "invalid redis URL: \(detail)"
        }
    }
}
