import Foundation

/// Where the NATS backplane connects, read from its URL:
/// `nats://[user:password@|token@]host:port[,host:port…][?prefix=im&timeout=2&replicas=1]`, or
/// `tls://…` for TLS (`&ca=/path/ca.pem` to trust a CA of its own; the system's otherwise).
public struct NATSConfiguration: Sendable, Equatable {
    /// The servers, as `nats://host:port` URLs (a cluster lists several).
    public var servers: [String]
    /// User and password, if the URL has them.
    public var user: String?
    /// The password for ``user``.
    public var password: String?
    /// A token, if the URL has one (`nats://token@host:port`).
    public var token: String?
    /// The prefix of every subject and bucket, so two clusters can share one NATS.
    public var prefix: String
    /// How long a command (a flush, a KV operation) may take before it fails.
    public var commandTimeout: Duration
    /// Whether to speak TLS (`tls://`).
    public var tls: Bool
    /// A PEM file of CA certificates to trust for TLS, instead of the system's.
    public var caFile: String?
    /// How many copies a NATS cluster keeps of the presence buckets (1…5; 3 for a three-server
    /// cluster that must survive losing one).
    public var replicas: Int

    /// A configuration for the servers in `servers`.
    public init(
        servers: [String] = ["nats://127.0.0.1:4222"], user: String? = nil, password: String? = nil,
        token: String? = nil, prefix: String = "im", commandTimeout: Duration = .seconds(2), tls: Bool = false,
        caFile: String? = nil, replicas: Int = 1
    ) {
        self.replicas = replicas
        self.servers = servers
        self.user = user
        self.password = password
        self.token = token
        self.prefix = prefix
        self.commandTimeout = commandTimeout
        self.tls = tls
        self.caFile = caFile
    }

    /// Reads a `nats://` URL, saying what is wrong with one it cannot take.
    public init(url: String) throws(NATSConfigurationError) {
        guard let schemeEnd = url.range(of: "://"),
            ["nats", "tls"].contains(url[..<schemeEnd.lowerBound].lowercased())
        else {
            throw NATSConfigurationError.invalid("a NATS URL starts with nats:// or tls:// (got \(url))")
        }
        let tls = url[..<schemeEnd.lowerBound].lowercased() == "tls"
        var rest = String(url[schemeEnd.upperBound...])
        var query: [String: String] = [:]
        if let mark = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                query[parts[0]] = parts.count > 1 ? (parts[1].removingPercentEncoding ?? parts[1]) : ""
            }
            rest = String(rest[..<mark])
        }
        if rest.hasSuffix("/") { rest.removeLast() }
        var user: String?
        var password: String?
        var token: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = String(rest[..<at])
            rest = String(rest[rest.index(after: at)...])
            if let colon = credentials.firstIndex(of: ":") {
                user = String(credentials[..<colon]).removingPercentEncoding
                password = String(credentials[credentials.index(after: colon)...]).removingPercentEncoding
            } else {
                token = credentials.removingPercentEncoding
            }
        }
        let hosts = rest.split(separator: ",").map(String.init)
        guard !hosts.isEmpty else { throw NATSConfigurationError.invalid("a NATS URL names at least one host:port") }
        var servers: [String] = []
        for host in hosts {
            let parts = host.split(separator: ":")
            guard parts.count <= 2, let name = parts.first, !name.isEmpty else {
                throw NATSConfigurationError.invalid("'\(host)' is not host[:port]")
            }
            let port = parts.count == 2 ? Int(parts[1]) : 4222
            guard let port, (1...65535).contains(port) else {
                throw NATSConfigurationError.invalid("'\(host)' has no valid port")
            }
            servers.append("\(tls ? "tls" : "nats")://\(name):\(port)")
        }
        let prefix = query["prefix"] ?? "im"
        guard !prefix.isEmpty, prefix.utf8.allSatisfy({ SubjectToken.isPlain($0) }) else {
            throw NATSConfigurationError.invalid("prefix must be letters, digits, '-' or '_' (got '\(prefix)')")
        }
        let known: Set = ["prefix", "timeout", "ca", "replicas"]
        if let unknown = query.keys.sorted().first(where: { !known.contains($0) }) {
            throw NATSConfigurationError.invalid(
                "unknown parameter '\(unknown)' (known: prefix, timeout, ca, replicas)")
        }
        var replicas = 1
        if let text = query["replicas"] {
            guard let count = Int(text), (1...5).contains(count) else {
                throw NATSConfigurationError.invalid("replicas must be 1 to 5 (got '\(text)')")
            }
            replicas = count
        }
        let caFile = query["ca"]
        if let caFile {
            guard tls else { throw NATSConfigurationError.invalid("ca is for tls:// URLs") }
            guard !caFile.isEmpty else { throw NATSConfigurationError.invalid("ca must name a PEM file") }
        }
        var timeout = Duration.seconds(2)
        if let text = query["timeout"] {
            guard let seconds = Double(text), seconds > 0, seconds <= 60 else {
                throw NATSConfigurationError.invalid("timeout must be seconds in (0, 60] (got '\(text)')")
            }
            timeout = .milliseconds(Int64(seconds * 1000))
        }
        self.init(
            servers: servers, user: user, password: password, token: token, prefix: prefix, commandTimeout: timeout,
            tls: tls, caFile: caFile, replicas: replicas)
    }
}

/// Why a NATS URL was refused.
public enum NATSConfigurationError: Error, Equatable, CustomStringConvertible {
    /// The URL is not one the NATS backplane takes; the text says what is wrong.
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let reason): "invalid NATS URL: \(reason)"
        }
    }
}
