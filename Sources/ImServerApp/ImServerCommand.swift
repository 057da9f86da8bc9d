import ArgumentParser
import Configuration
import ImCore
import ImHelper
import ImServer
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle

/// `imserver`: runs one ImServer node (and its server API) until SIGTERM or SIGINT. Started
/// through ``ImServerMain/run(plugins:)``.
struct ImServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imserver",
        abstract: "A real-time messaging node: WebSocket delivery, presence and channels.",
        discussion: """
            Every option can also be set by an environment variable (IM_ and the option's key in \
            upper case, e.g. IM_BACKPLANE_URL) or in a JSON file given with --config. Flags win over \
            the environment, which wins over the file. See docs/configuration.md.
            """)

    @Option(help: "Backplane URL: memory:// (default, single node) or a plugin's URL. [backplane.url]")
    var backplaneURL: String?
    @Option(help: "This node's id (default: random). [node.id]")
    var nodeID: String?
    @Option(help: "Public WebSocket listener, host:port (default 127.0.0.1:6001). [public.listen]")
    var listen: String?
    @Option(help: "WebSocket path (default /ws). [public.path]")
    var path: String?
    @Option(
        help: "URL clients are given to connect, e.g. wss://chat.example.com/ws (default from --listen). [public.url]")
    var publicURL: String?
    @Option(help: "Server API listener, host:port (default 127.0.0.1:6002), or 'off'. [api.listen]")
    var apiListen: String?
    @Option(help: "Server API key; required unless the API listens on loopback. [api.key]")
    var apiKey: String?
    @Option(
        help: "HS256 secret for connect tokens, at least 32 bytes (default: random, with a warning). [token.secret]")
    var tokenSecret: String?
    @Option(help: "Bus subject prefix (default im). [subject.prefix]")
    var subjectPrefix: String?
    @Option(help: "JSON configuration file.")
    var config: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default info). [log.level]")
    var logLevel: String?
    @Option(help: "Event-loop threads (default: one per core). [threads]")
    var threads: Int?
    @Flag(help: "Serve the demo chat page at / of the public port, with a demo-only token endpoint. [demo]")
    var demo = false

    func run() async throws {
        let reader = try await makeReader()
        let settings = try await Settings(reader: reader)
        // Before anything touches the shared event-loop group: its size is fixed on first use.
        NIOSingletons.groupLoopCountSuggestion = settings.threads
        LoggingSystem.bootstrap { label in
            var handler = DeferredMetadataLogHandler(StreamLogHandler.standardError(label: label))
            handler.logLevel = settings.logLevel
            return handler
        }
        let logger = Logger(label: "imserver")
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Delivery latency and backplane round trips are sub-millisecond on a quiet node.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .microseconds(2_500_000), .seconds(5),
        ]
        MetricsSystem.bootstrap(factory)
        try await Launcher(settings: settings, logger: logger, metricsRegistry: registry).run()
    }

    private func makeReader() async throws -> ConfigReader {
        var flags: [AbsoluteConfigKey: ConfigValue] = [:]
        func set(_ key: AbsoluteConfigKey, _ value: String?, secret: Bool = false) {
            if let value { flags[key] = ConfigValue(.string(value), isSecret: secret) }
        }
        set("backplane.url", backplaneURL)
        set("node.id", nodeID)
        set("public.listen", listen)
        set("public.path", path)
        set("public.url", publicURL)
        set("api.listen", apiListen)
        set("api.key", apiKey, secret: true)
        set("token.secret", tokenSecret, secret: true)
        set("subject.prefix", subjectPrefix)
        set("log.level", logLevel)
        if let threads { flags["threads"] = ConfigValue(.int(threads), isSecret: false) }
        if demo { flags["demo"] = ConfigValue(.bool(true), isSecret: false) }
        var providers: [any ConfigProvider] = [
            InMemoryProvider(name: "flags", values: flags),
            EnvironmentVariablesProvider(secretsSpecifier: .specific(["IM_API_KEY", "IM_TOKEN_SECRET"]))
                .prefixKeys(with: "im"),
        ]
        if let config {
            providers.append(try await FileProvider<JSONSnapshot>(filePath: .init(config)))
        }
        return ConfigReader(providers: providers)
    }
}
