import ImBackplane
@testable import ImPostgres
import ImTesting
import Logging
import Testing

/// One PostgreSQL cluster (made by `initdb`) for the conformance suites of this process.
enum SharedPostgres {
    static let server = Task { try await LocalServer.postgres() }

    static func configuration(schema: String = "conformance") async throws -> PostgresConfiguration {
        let server = try await server.value
        return PostgresConfiguration(port: server.port, schema: schema)
    }
}

/// PostgreSQL must be installed to run these; in CI its absence is a failure.
let postgresAvailable = LocalServer.postgresInstalled || isContinuousIntegration

/// Runs `body` with a PostgreSQL server of its own (the restart checks kill it) and a way to
/// kill and restart it; the server is killed after, whether `body` threw or not.
func withServerToRestart(
    _ body: (PostgresConfiguration, @escaping @Sendable () async throws -> Void) async throws -> Void
) async throws {
    let server = try await LocalServer.postgres()
    do {
        try await body(PostgresConfiguration(port: server.port, schema: "restart")) {
            try await server.kill()
            try await server.restart()
        }
    } catch {
        try? await server.kill()
        throw error
    }
    try await server.kill()
}

@Suite("PostgreSQL backplane conformance", .enabled(if: postgresAvailable))
struct PostgresConformanceTests {
    @Test(arguments: BusConformance.Check.allCases)
    func bus(_ check: BusConformance.Check) async throws {
        guard check != .survivesBackendRestart else {
            try await withServerToRestart { configuration, restart in
                let outcome = try await BusConformance(
                    restartBackend: restart,
                    makeBus: { try PostgresBus(configuration: configuration, logger: Logger(label: "pg-conformance")) }
                ).run(check)
                #expect(outcome == .passed)
            }
            return
        }
        let configuration = try await SharedPostgres.configuration()
        let outcome = try await BusConformance(makeBus: {
            try PostgresBus(configuration: configuration, logger: Logger(label: "pg-conformance"))
        }).run(check)
        #expect(outcome == .passed)
    }

    @Test(arguments: PresenceConformance.Check.allCases)
    func presence(_ check: PresenceConformance.Check) async throws {
        guard check != .survivesBackendRestart else {
            try await withServerToRestart { configuration, restart in
                let outcome = try await PresenceConformance(
                    restartBackend: restart,
                    makePresence: {
                        try PostgresPresence(configuration: configuration, logger: Logger(label: "pg-conformance"))
                    }
                ).run(check)
                #expect(outcome == .passed)
            }
            return
        }
        let configuration = try await SharedPostgres.configuration()
        let outcome = try await PresenceConformance(makePresence: {
            try PostgresPresence(configuration: configuration, logger: Logger(label: "pg-conformance"))
        }).run(check)
        #expect(outcome == .passed)
    }

    @Test("postgres:// URLs parse with credentials, TLS modes and parameters; bad ones are refused")
    func urlParsing() throws {
        let full = try PostgresConfiguration(
            url:
                "postgresql://app:s3cr%40t@db.local:6543/chat?sslmode=verify-full&sslrootcert=/ca.pem&pool=8&schema=im2&timeout=0.5"
        )
        #expect(
            full
                == PostgresConfiguration(
                    host: "db.local", port: 6543, username: "app", password: "s3cr@t", database: "chat",
                    tls: .verifyFull, rootCertificate: "/ca.pem", poolSize: 8, schema: "im2",
                    commandTimeout: .milliseconds(500)))
        #expect(
            try PostgresConfiguration(url: "postgres://u@h/d")
                == PostgresConfiguration(host: "h", username: "u", database: "d"))
        for bad in [
            "redis://h", "postgres://h/d", "postgres://u@h", "postgres://u@h:0/d", "postgres://u@h/d?sslmode=maybe",
            "postgres://u@h/d?sslrootcert=/x", "postgres://u@h/d?pool=0", "postgres://u@h/d?schema=Bad",
            "postgres://u@h/d?schema=1x", "postgres://u@h/d?timeout=0", "postgres://u@h/d?bogus=1",
        ] {
            #expect(throws: PostgresConfigurationError.self, "\(bad)") { try PostgresConfiguration(url: bad) }
        }
    }
}
