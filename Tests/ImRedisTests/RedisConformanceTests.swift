import Foundation
import ImCore
import ImRedis
import ImTesting
import Logging
import NIOPosix
import Testing

/// One redis-server for the conformance suites of this process.
enum SharedRedis {
    static let server = Task { try await LocalServer.redis() }

    static func configuration() async throws -> RedisConfiguration {
        let server = try await server.value
        return RedisConfiguration(port: server.port, keyPrefix: "conformance")
    }
}

/// Redis must be installed to run these; in CI its absence is a failure (the suites run and throw).
let redisAvailable = findExecutable("redis-server") != nil || isContinuousIntegration

@Suite("Redis backplane conformance", .enabled(if: redisAvailable))
struct RedisConformanceTests {
    @Test(arguments: BusConformance.Check.allCases)
    func bus(_ check: BusConformance.Check) async throws {
        guard check != .survivesBackendRestart else {
            // Restarting disturbs every client: this check gets a redis-server of its own.
            try await withDedicatedRedis { configuration, restart in
                let outcome = try await BusConformance(
                    restartBackend: restart,
                    makeBus: {
                        RedisBus(
                            configuration: configuration, group: MultiThreadedEventLoopGroup.singleton,
                            logger: Logger(label: "redis-conformance"))
                    }
                ).run(check)
                #expect(outcome == .passed)
            }
            return
        }
        let configuration = try await SharedRedis.configuration()
        let outcome = try await BusConformance(makeBus: {
            RedisBus(
                configuration: configuration, group: MultiThreadedEventLoopGroup.singleton,
                logger: Logger(label: "redis-conformance"))
        }).run(check)
        #expect(outcome == .passed)
    }

    @Test(arguments: PresenceConformance.Check.allCases)
    func presence(_ check: PresenceConformance.Check) async throws {
        guard check != .survivesBackendRestart else {
            try await withDedicatedRedis { configuration, restart in
                let outcome = try await PresenceConformance(
                    restartBackend: restart,
                    makePresence: {
                        RedisPresence(
                            configuration: configuration, group: MultiThreadedEventLoopGroup.singleton,
                            logger: Logger(label: "redis-conformance"))
                    }
                ).run(check)
                #expect(outcome == .passed)
            }
            return
        }
        let configuration = try await SharedRedis.configuration()
        let outcome = try await PresenceConformance(makePresence: {
            RedisPresence(
                configuration: configuration, group: MultiThreadedEventLoopGroup.singleton,
                logger: Logger(label: "redis-conformance"))
        }).run(check)
        #expect(outcome == .passed)
    }

    @Test(arguments: NodeRouterConformance.Check.allCases)
    func router(_ check: NodeRouterConformance.Check) async throws {
        let configuration = try await SharedRedis.configuration()
        let outcome = try await NodeRouterConformance(makeBackplane: {
            .redis(configuration, logger: Logger(label: "redis-conformance"))
        }).run(check)
        #expect(outcome == .passed)
    }

    /// Runs `body` with a redis-server of its own and a closure that restarts it (killed, as a
    /// crash would, then started again on the same port); stops the server afterwards.
    private func withDedicatedRedis(
        _ body: (RedisConfiguration, @escaping @Sendable () async throws -> Void) async throws -> Void
    ) async throws {
        let server = try await LocalServer.redis()
        let configuration = RedisConfiguration(port: server.port, keyPrefix: "restart")
        do {
            try await body(configuration) {
                try await server.kill()
                try await server.restart()
            }
        } catch {
            try? await server.kill()
            throw error
        }
        try await server.kill()
    }

    @Test("redis:// URLs parse with user, password, database and parameters; bad ones are refused")
    func urlParsing() throws {
        let full = try RedisConfiguration(
            url: #require(URL(string: "rediss://app:s3cr%40t@cache.local:6380/2?prefix=chat&timeout=0.5&pool=4")))
        #expect(
            full
                == RedisConfiguration(
                    host: "cache.local", port: 6380, user: "app", password: "s3cr@t", database: 2,
                    keyPrefix: "chat", commandTimeout: .milliseconds(500), poolSize: 4, tls: true))
        let passwordOnly = try RedisConfiguration(url: #require(URL(string: "redis://:pw@127.0.0.1")))
        #expect(passwordOnly.password == "pw" && passwordOnly.user == nil && passwordOnly.port == 6379)
        #expect(throws: RedisConfigurationError.self) {
            try RedisConfiguration(url: #require(URL(string: "redis://h/x")))
        }
        #expect(throws: RedisConfigurationError.self) {
            try RedisConfiguration(url: #require(URL(string: "redis://h?bogus=1")))
        }
        #expect(throws: RedisConfigurationError.self) {
            try RedisConfiguration(url: #require(URL(string: "redis://h?pool=0")))
        }
    }

    @Test("rediss:// with ca= talks TLS to a TLS-only Redis: publish, subscribe and presence work")
    func tls() async throws {
        let files = try LocalServer.selfSignedCertificate()
        let server = try await LocalServer.redis(tls: files)
        do {
            try await checkTLS(port: server.port, certificate: files.certificate)
        } catch {
            try? await server.kill()
            throw error
        }
        try await server.kill()
    }

    private func checkTLS(port: Int, certificate: String) async throws {
        let url = "rediss://127.0.0.1:\(port)/0?prefix=tls&ca=\(certificate)"
        let configuration = try RedisConfiguration(url: #require(URL(string: url)))
        #expect(configuration.tls && configuration.certificateAuthorities == certificate)
        try await BusConformance(makeBus: {
            RedisBus(
                configuration: configuration, group: MultiThreadedEventLoopGroup.singleton,
                logger: Logger(label: "redis-tls"))
        }).run(.deliversToSubscriber)
        try await PresenceConformance(makePresence: {
            RedisPresence(
                configuration: configuration, group: MultiThreadedEventLoopGroup.singleton,
                logger: Logger(label: "redis-tls"))
        }).run(.connectCountsPerUser)

        // Without the private CA the certificate is not trusted: the connection fails, clearly.
        var untrusted = configuration
        untrusted.certificateAuthorities = nil
        let presence = RedisPresence(
            configuration: untrusted, group: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "redis-tls"))
        await #expect(throws: BackplaneError.self) { _ = try await presence.nodes(of: ["alice"]) }
        #expect(throws: RedisConfigurationError.self) {
            try RedisConfiguration(url: #require(URL(string: "redis://127.0.0.1?ca=/x.pem")))
        }
    }

    @Test("the factory builds redis:// backplanes")
    func factory() async throws {
        var factory = BackplaneFactory()
        factory.registerRedis()
        #expect(factory.schemes == ["memory", "redis", "rediss"])
        let backplane = try await factory.makeBackplane(url: "redis://127.0.0.1:1/0", logger: Logger(label: "t"))
        #expect(backplane.bus is RedisBus)
    }
}
