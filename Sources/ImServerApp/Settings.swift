import Configuration
import ImCore
import ImHelper
import ImServer
import ImServerAPI
import Logging
import NIOCore

/// Every setting of `imserver`, read from flags, `IM_*` environment variables and the file.
struct Settings: Sendable {
    var backplaneURL: String
    var node: NodeConfiguration
    var publicURL: String
    var api: ServerAPIConfiguration?
    var tokenSecret: String?
    var tokenLifetime: Duration
    var commandTimeout: Duration
    var logLevel: Logger.Level
    /// Whether the demo chat page and its token endpoint are served on the public port.
    var demo: Bool
    /// Whether the demo may run on a non-loopback address (then it also answers any `Host`).
    var demoAllowPublic: Bool
    /// Event-loop threads (connections are spread over them); default: one per core.
    var threads: Int

    init(reader: ConfigReader) async throws {
        // Every default is the library's own (NodeConfiguration, Limits, ServerAPIConfiguration,
        // HelperConfiguration), so it is written once.
        let defaults = NodeConfiguration()
        let helperDefaults = HelperConfiguration()
        let apiDefaults = ServerAPIConfiguration()
        backplaneURL = reader.string(forKey: "backplane.url", default: "memory://")
        let (host, port) = try Self.address(
            reader.string(forKey: "public.listen", default: Self.listen(defaults.host, defaults.port)),
            key: "public.listen")
        var node = NodeConfiguration(host: host, port: port)
        if let id = reader.string(forKey: "node.id") { node.nodeID = NodeID(rawValue: id) }
        node.path = reader.string(forKey: "public.path", default: defaults.path)
        node.eventStreams = reader.bool(forKey: "public.eventStreams", default: defaults.eventStreams)
        node.subjects = Subjects(prefix: reader.string(forKey: "subject.prefix", default: defaults.subjects.prefix))
        demo = reader.bool(forKey: "demo", default: false)
        node.pingInterval = try Self.seconds(reader, "heartbeat.interval", default: defaults.pingInterval)
        node.idleTimeout = try Self.seconds(reader, "heartbeat.idleTimeout", default: defaults.idleTimeout)
        node.leaseTTL = try Self.seconds(reader, "lease.ttl", default: defaults.leaseTTL)
        node.flushInterval = try Self.seconds(
            reader, "delivery.flushInterval", default: defaults.flushInterval, in: 0...1)
        var limits = defaults.limits
        limits.maxFrameSize = reader.int(forKey: "limits.maxFrameSize", default: limits.maxFrameSize)
        limits.messagesPerSecond = reader.int(forKey: "limits.messagesPerSecond", default: limits.messagesPerSecond)
        limits.messageBurst = reader.int(forKey: "limits.messageBurst", default: limits.messageBurst)
        limits.connectionsPerUser = reader.int(forKey: "limits.connectionsPerUser", default: limits.connectionsPerUser)
        limits.connectionsPerNode = reader.int(forKey: "limits.connectionsPerNode", default: limits.connectionsPerNode)
        limits.handshakesPerSecond = reader.int(
            forKey: "limits.handshakesPerSecond", default: limits.handshakesPerSecond)
        limits.handshakesPerSource = reader.int(
            forKey: "limits.handshakesPerSource", default: limits.handshakesPerSource)
        limits.writeBufferHighWater = reader.int(
            forKey: "limits.writeBufferHighWater", default: limits.writeBufferHighWater)
        limits.maxQueuedBytes = reader.int(forKey: "limits.maxQueuedBytes", default: limits.maxQueuedBytes)
        limits.slowConsumerTimeout = try Self.seconds(
            reader, "limits.slowConsumerTimeout", default: limits.slowConsumerTimeout)
        limits.handshakeTimeout = try Self.seconds(reader, "limits.handshakeTimeout", default: limits.handshakeTimeout)
        limits.pendingAcks = reader.int(forKey: "limits.pendingAcks", default: limits.pendingAcks)
        node.limits = limits
        node.tls = try Self.tls(reader, "public.tls")
        self.node = node
        try node.validate()
        let scheme = node.tls == nil ? "ws" : "wss"
        publicURL = reader.string(
            forKey: "public.url", default: "\(scheme)://\(Self.urlHost(host)):\(port)\(node.path)")
        demoAllowPublic = reader.bool(forKey: "demo.allowPublic", default: false)
        if demo && !ServerAPIConfiguration.isLoopback(host) && !demoAllowPublic {
            throw ConfigurationError(
                key: "demo", value: "true",
                expected: "the demo only on a loopback listen address: its token endpoint lets anyone log in "
                    + "as anyone (set demo.allowPublic / IM_DEMO_ALLOW_PUBLIC=true to override)")
        }
        let apiListen = reader.string(forKey: "api.listen", default: Self.listen(apiDefaults.host, apiDefaults.port))
        if apiListen == "off" {
            api = nil
        } else {
            let (apiHost, apiPort) = try Self.address(apiListen, key: "api.listen")
            var configuration = ServerAPIConfiguration(
                host: apiHost, port: apiPort,
                apiKey: reader.string(forKey: "api.key", isSecret: true))
            configuration.tls = try Self.tls(reader, "api.tls")
            try configuration.validate()
            api = configuration
        }
        tokenSecret = reader.string(forKey: "token.secret", isSecret: true)
        tokenLifetime = try Self.seconds(
            reader, "token.lifetime", default: helperDefaults.tokenLifetime,
            in: 0.001...ConnectTokens.defaultMaximumLifetime.seconds)
        commandTimeout = try Self.seconds(reader, "command.timeout", default: helperDefaults.commandTimeout)
        let level = reader.string(forKey: "log.level", default: "info")
        guard let parsed = Logger.Level(rawValue: level) else {
            throw ConfigurationError(key: "log.level", value: level, expected: "trace … critical")
        }
        logLevel = parsed
        threads = reader.int(forKey: "threads", default: System.coreCount)
        guard (1...1024).contains(threads) else {
            throw ConfigurationError(key: "threads", value: String(threads), expected: "1 to 1024")
        }
    }

    /// The setting `key` in seconds (`fallback` when unset), refused (not trapped on) when it
    /// is not a finite number in `range` (default: 1 ms to one day).
    static func seconds(
        _ reader: ConfigReader, _ key: String, default fallback: Duration,
        in range: ClosedRange<Double> = 0.001...86_400
    ) throws(ConfigurationError) -> Duration {
        try Duration.setting(key, seconds: reader.double(forKey: ConfigKey(key), default: fallback.seconds), in: range)
    }

    /// TLS from the PEM files `<setting>.certificate` and `<setting>.key`; `nil` when neither
    /// is set. One without the other, unreadable files or a key that is not the certificate's
    /// stop the node at start.
    static func tls(_ reader: ConfigReader, _ setting: String) throws(TLSSetupError) -> ReloadableTLS? {
        let certificate = reader.string(forKey: ConfigKey(setting + ".certificate"))
        let key = reader.string(forKey: ConfigKey(setting + ".key"))
        switch (certificate, key) {
        case (nil, nil): return nil
        case (let certificate?, let key?):
            return try ReloadableTLS(certificatePath: certificate, keyPath: key, setting: setting)
        default: throw .incomplete(setting: setting)
        }
    }

    /// `host:port` as a listen setting is written (IPv6 in brackets).
    static func listen(_ host: String, _ port: Int) -> String {
        "\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }

    /// `host` as it goes in a URL: wildcard addresses become loopback, IPv6 gets brackets.
    static func urlHost(_ host: String) -> String {
        switch host {
        case "0.0.0.0": "127.0.0.1"
        case "::": "[::1]"
        default: host.contains(":") ? "[\(host)]" : host
        }
    }

    /// Splits `host:port` (IPv6 as `[::1]:6001`).
    static func address(_ text: String, key: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { throw ConfigurationError(key: key, value: text, expected: "host:port") }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}
