import Foundation

/// Where the PostgreSQL backplane connects, read from its URL:
/// `postgres://user[:password]@host[:port]/database[?sslmode=…&sslrootcert=…&pool=…&schema=…&timeout=…]`
/// (`postgresql://` too).
///
/// - `sslmode`: `disable` (the default), `require` (TLS, the certificate not checked) or
///   `verify-full` (TLS, the certificate checked against the system's CAs or `sslrootcert`).
/// - `pool`: connections for queries (1…100, default 4); one more listens.
/// - `schema`: where the plugin's tables live (created at start; default `im`).
/// - `timeout`: seconds a statement may take before it fails (default 2).
public struct PostgresConfiguration: Sendable, Equatable {
    /// How the connection is secured.
    public enum TLSMode: String, Sendable, Equatable {
        /// No TLS.
        case disable
        /// TLS, without checking the server's certificate.
        case require
        /// TLS, checking the certificate and that it names the host.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// A PEM file of CA certificates for `verify-full`, instead of the system's.
    public var rootCertificate: String?
    /// Connections for queries.
    public var poolSize: Int
    /// The schema of the plugin's tables.
    public var schema: String
    /// How long a statement may take.
    public var commandTimeout: Duration

    /// A configuration for one server.
    public init(
        host: String = "127.0.0.1", port: Int = 5432, username: String = "postgres", password: String? = nil,
        database: String = "postgres", tls: TLSMode = .disable, rootCertificate: String? = nil, poolSize: Int = 4,
        schema: String = "im", commandTimeout: Duration = .seconds(2)
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.rootCertificate = rootCertificate
        self.poolSize = poolSize
        self.schema = schema
        self.commandTimeout = commandTimeout
    }

    /// Reads a `postgres://` URL, saying what is wrong with one it cannot take.
    public init(url text: String) throws(PostgresConfigurationError) {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(),
            ["postgres", "postgresql"].contains(scheme)
        else {
            throw .invalid("a PostgreSQL URL starts with postgres:// or postgresql:// (got \(text))")
        }
        guard let host = url.host, !host.isEmpty else { throw .invalid("the URL names no host") }
        let port = url.port ?? 5432
        guard (1...65535).contains(port) else { throw .invalid("port \(port) is out of range") }
        guard let user = url.user, !user.isEmpty else {
            throw .invalid("the URL names no user (postgres://user@host/db)")
        }
        let database = String(url.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw .invalid("the URL names no database (postgres://user@host/db)") }
        var query: [String: String] = [:]
        for item in url.queryItems ?? [] { query[item.name] = item.value ?? "" }
        let known: Set = ["sslmode", "sslrootcert", "pool", "schema", "timeout"]
        if let unknown = query.keys.sorted().first(where: { !known.contains($0) }) {
            throw .invalid("unknown parameter '\(unknown)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        let mode = query["sslmode"] ?? "disable"
        guard let tls = TLSMode(rawValue: mode) else {
            throw .invalid("sslmode must be disable, require or verify-full (got '\(mode)')")
        }
        let rootCertificate = query["sslrootcert"]
        if rootCertificate != nil, tls != .verifyFull {
            throw .invalid("sslrootcert is for sslmode=verify-full")
        }
        var poolSize = 4
        if let value = query["pool"] {
            guard let size = Int(value), (1...100).contains(size) else {
                throw .invalid("pool must be 1 to 100 (got '\(value)')")
            }
            poolSize = size
        }
        let schema = query["schema"] ?? "im"
        try Self.check(schema: schema)
        var timeout = Duration.seconds(2)
        if let value = query["timeout"] {
            guard let seconds = Double(value), seconds > 0, seconds <= 60 else {
                throw .invalid("timeout must be seconds in (0, 60] (got '\(value)')")
            }
            timeout = .milliseconds(Int64(seconds * 1000))
        }
        self.init(
            host: host, port: port, username: user.removingPercentEncoding ?? user,
            password: url.password.map { $0.removingPercentEncoding ?? $0 }, database: database, tls: tls,
            rootCertificate: rootCertificate, poolSize: poolSize, schema: schema, commandTimeout: timeout)
    }
}

extension PostgresConfiguration {
    /// Refuses a schema name that is not a plain lower-case identifier: the plugin writes it
    /// into its statements and into LISTEN channel names (63 bytes at most, with 17 of ours).
    static func check(schema: String) throws(PostgresConfigurationError) {
        guard !schema.isEmpty, schema.utf8.count <= 40,
            schema.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }),
            let first = schema.utf8.first, !(48...57).contains(first)
        else {
            throw .invalid(
                "schema must be lower-case letters, digits and '_', at most 40, not starting with a digit (got '\(schema)')"
            )
        }
    }

    /// Refuses settings out of range (for a configuration made in code rather than from a URL).
    func validate() throws(PostgresConfigurationError) {
        try Self.check(schema: schema)
        guard (1...100).contains(poolSize) else { throw .invalid("pool must be 1 to 100 (got \(poolSize))") }
        guard commandTimeout > .zero, commandTimeout <= .seconds(60) else {
            throw .invalid("timeout must be in (0, 60] seconds (got \(commandTimeout))")
        }
        guard (1...65535).contains(port) else { throw .invalid("port \(port) is out of range") }
    }
}

/// Why a PostgreSQL URL was refused.
public enum PostgresConfigurationError: Error, Equatable, CustomStringConvertible {
    /// The URL is not one the PostgreSQL backplane takes; the text says what is wrong.
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let reason): "invalid PostgreSQL URL: \(reason)"
        }
    }
}
