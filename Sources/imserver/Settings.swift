import Configuration
import ImCore
import ImServer
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
    /// Event-loop threads (connections are spread over them); default: one per core.
    var threads: Int

    init(reader: ConfigReader) async throws {
        backplaneURL = reader.string(forKey: "backplane.url", default: "memory://")
        let (host, port) = try Self.address(reader.string(forKey: "public.listen", default: "127.0.0.1:6001"),
                                            key: "public.listen")
        var node = NodeConfiguration(host: host, port: port)
        if let id = reader.string(forKey: "node.id") { node.nodeID = NodeID(rawValue: id) }
        node.path = reader.string(forKey: "public.path", default: "/ws")
        node.subjects = Subjects(prefix: reader.string(forKey: "subject.prefix", default: "im"))
        node.demo = reader.bool(forKey: "demo", default: false)
        node.pingInterval = .seconds(reader.double(forKey: "heartbeat.interval", default: 25))
        node.idleTimeout = .seconds(reader.double(forKey: "heartbeat.idleTimeout", default: 60))
        node.leaseTTL = .seconds(reader.double(forKey: "lease.ttl", default: 15))
        let flushInterval = reader.double(forKey: "delivery.flushInterval", default: 0.025)
        guard (0...1).contains(flushInterval) else {
            throw SettingsError.invalid(key: "delivery.flushInterval", value: String(flushInterval),
                                        expected: "0 to 1 seconds")
        }
        node.flushInterval = .seconds(flushInterval)
        var limits = Limits()
        limits.maxFrameSize = reader.int(forKey: "limits.maxFrameSize", default: limits.maxFrameSize)
        limits.messagesPerSecond = reader.int(forKey: "limits.messagesPerSecond", default: limits.messagesPerSecond)
        limits.messageBurst = reader.int(forKey: "limits.messageBurst", default: limits.messageBurst)
        limits.connectionsPerUser = reader.int(forKey: "limits.connectionsPerUser", default: limits.connectionsPerUser)
        limits.connectionsPerNode = reader.int(forKey: "limits.connectionsPerNode", default: limits.connectionsPerNode)
        limits.handshakesPerSecond = reader.int(forKey: "limits.handshakesPerSecond", default: limits.handshakesPerSecond)
        limits.handshakesPerSource = reader.int(forKey: "limits.handshakesPerSource", default: limits.handshakesPerSource)
        limits.writeBufferHighWater = reader.int(forKey: "limits.writeBufferHighWater", default: limits.writeBufferHighWater)
        limits.maxQueuedBytes = reader.int(forKey: "limits.maxQueuedBytes", default: limits.maxQueuedBytes)
        limits.slowConsumerTimeout = .seconds(reader.double(forKey: "limits.slowConsumerTimeout", default: 10))
        limits.handshakeTimeout = .seconds(reader.double(forKey: "limits.handshakeTimeout", default: 10))
        limits.pendingAcks = reader.int(forKey: "limits.pendingAcks", default: limits.pendingAcks)
        node.limits = limits
        self.node = node
        try Self.validate(node)
        publicURL = reader.string(forKey: "public.url", default: "ws://\(Self.urlHost(host)):\(port)\(node.path)")
        if node.demo && !ServerAPIConfiguration.isLoopback(host) && !reader.bool(forKey: "demo.allowPublic", default: false) {
            throw SettingsError.invalid(
                key: "demo", value: "true",
                expected: "the demo only on a loopback listen address: its token endpoint lets anyone log in "
                    + "as anyone (set demo.allowPublic / IM_DEMO_ALLOW_PUBLIC=true to override)")
        }
        let apiListen = reader.string(forKey: "api.listen", default: "127.0.0.1:6002")
        if apiListen == "off" {
            api = nil
        } else {
            let (apiHost, apiPort) = try Self.address(apiListen, key: "api.listen")
            api = ServerAPIConfiguration(host: apiHost, port: apiPort,
                                         apiKey: reader.string(forKey: "api.key", isSecret: true))
        }
        tokenSecret = reader.string(forKey: "token.secret", isSecret: true)
        tokenLifetime = .seconds(reader.double(forKey: "token.lifetime", default: 30))
        commandTimeout = .seconds(reader.double(forKey: "command.timeout", default: 3))
        guard tokenLifetime > .zero, commandTimeout > .zero else {
            throw SettingsError.invalid(key: "token.lifetime / command.timeout", value: "<= 0",
                                        expected: "a positive number of seconds")
        }
        let level = reader.string(forKey: "log.level", default: "info")
        guard let parsed = Logger.Level(rawValue: level) else {
            throw SettingsError.invalid(key: "log.level", value: level, expected: "trace … critical")
        }
        logLevel = parsed
        threads = reader.int(forKey: "threads", default: System.coreCount)
        guard (1...1024).contains(threads) else {
            throw SettingsError.invalid(key: "threads", value: String(threads), expected: "1 to 1024")
        }
    }

    /// Refuses limits and intervals that would break the node (zero or negative).
    static func validate(_ node: NodeConfiguration) throws {
        let limits = node.limits
        let counts: [(String, Int)] = [
            ("limits.maxFrameSize", limits.maxFrameSize), ("limits.messagesPerSecond", limits.messagesPerSecond),
            ("limits.messageBurst", limits.messageBurst), ("limits.connectionsPerUser", limits.connectionsPerUser),
            ("limits.connectionsPerNode", limits.connectionsPerNode),
            ("limits.handshakesPerSecond", limits.handshakesPerSecond),
            ("limits.handshakesPerSource", limits.handshakesPerSource),
            ("limits.writeBufferHighWater", limits.writeBufferHighWater), ("limits.maxQueuedBytes", limits.maxQueuedBytes),
            ("limits.pendingAcks", limits.pendingAcks),
        ]
        for (key, value) in counts where value <= 0 {
            throw SettingsError.invalid(key: key, value: String(value), expected: "a positive whole number")
        }
        let durations: [(String, Duration)] = [
            ("heartbeat.interval", node.pingInterval), ("heartbeat.idleTimeout", node.idleTimeout),
            ("lease.ttl", node.leaseTTL), ("limits.slowConsumerTimeout", limits.slowConsumerTimeout),
            ("limits.handshakeTimeout", limits.handshakeTimeout),
        ]
        for (key, value) in durations where value <= .zero {
            throw SettingsError.invalid(key: key, value: "\(value)", expected: "a positive number of seconds")
        }
        guard node.idleTimeout > node.pingInterval else {
            throw SettingsError.invalid(key: "heartbeat.idleTimeout", value: "\(node.idleTimeout)",
                                        expected: "more than heartbeat.interval (\(node.pingInterval))")
        }
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
        else { throw SettingsError.invalid(key: key, value: text, expected: "host:port") }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}

/// A setting with a value it cannot take.
enum SettingsError: Error, CustomStringConvertible {
    case invalid(key: String, value: String, expected: String)

    var description: String {
        switch self {
        case .invalid(let key, let value, let expected): "setting \(key) = '\(value)' is invalid; expected \(expected)"
        }
    }
}
