import ImCore
import ImHelper
import ImNATS
import ImPostgres
import ImRedis
import Prometheus
import ImServer
import ImServerAPI
import Logging
import ServiceLifecycle

/// Builds the node, its API and the backplane from ``Settings`` and runs them as one service group.
struct Launcher {
    let settings: Settings
    let logger: Logger
    let metricsRegistry: PrometheusCollectorRegistry

    func run() async throws {
        let secret: String
        if let configured = settings.tokenSecret {
            secret = configured
        } else {
            secret = randomHex(bytes: 32)
            logger.warning(
                """
                no token secret configured (IM_TOKEN_SECRET or --token-secret): using a random one; \
                tokens minted by other processes will be refused
                """)
        }
        let tokens = try await ConnectTokens(secret: secret)
        let backplane = try await BackplaneFactory.withPlugins().makeBackplane(
            url: settings.backplaneURL, logger: logger)
        let helper = ImHelper(
            backplane: backplane, tokens: tokens,
            configuration: HelperConfiguration(
                publicURL: settings.publicURL, subjects: settings.node.subjects,
                tokenLifetime: settings.tokenLifetime,
                commandTimeout: settings.commandTimeout),
            logger: logger)
        var routes = PublicRoutes()
        routes.addClientScript()
        if settings.demo { routes.addDemo(helper: helper, loopbackOnly: !settings.demoAllowPublic) }
        let node = ImNode(
            configuration: settings.node, backplane: backplane, tokens: tokens, routes: routes,
            logger: logger)
        var dependents: [any Service] = []
        if let api = settings.api {
            let registry = metricsRegistry
            dependents.append(
                try ServerAPI.makeApplication(
                    helper: helper, configuration: api, health: { backplane.health },
                    metrics: { registry.emitToString() }, nodeStats: { await node.core.snapshot() },
                    logger: logger))
        }
        let tls = [settings.node.tls, settings.api?.tls].compactMap { $0 }
        if !tls.isEmpty { dependents.append(TLSReloader(contexts: tls, logger: logger)) }
        if settings.demo {
            dependents.append(DemoAnnouncer(helper: helper))
            let page =
                "\(settings.node.tls == nil ? "http" : "https")://\(Settings.urlHost(settings.node.host)):\(settings.node.port)/"
            logger.notice("demo chat: open \(page) in two browser tabs")
        }
        // The backplane first: the group stops services in reverse order, so it stops last,
        // after the node has unregistered its connections (see NodeServices.ordered).
        let services = NodeServices.ordered(backplane: backplane, node: node, dependents: dependents)
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await helper.close()
    }
}

extension BackplaneFactory {
    /// The factory with every backplane plugin this executable links, and those added
    /// through ``ImServerMain/run(plugins:)``.
    static func withPlugins() -> BackplaneFactory {
        var factory = BackplaneFactory()
        factory.registerRedis()
        factory.registerNATS()
        factory.registerPostgres()
        ImServerMain.extraPlugins.withLock { $0 }(&factory)
        return factory
    }
}
