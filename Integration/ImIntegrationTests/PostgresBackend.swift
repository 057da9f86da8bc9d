import ImCore
@testable import ImPostgres
import ImTesting
import Logging

/// A throw-away PostgreSQL cluster on loopback (``LocalServer/postgres(port:persistent:)``),
/// the plugin's tables in the schema `it`.
struct PostgresBackend: LocalServerBackend {
    static let name = "postgres"
    static var isInstalled: Bool { LocalServer.postgresInstalled }
    static let schema = "it"

    let server: LocalServer

    static func start(persistent: Bool) async throws -> PostgresBackend {
        PostgresBackend(server: try await LocalServer.postgres(persistent: persistent))
    }

    var url: String { "postgres://postgres@127.0.0.1:\(server.port)/postgres?schema=\(Self.schema)&timeout=1" }

    func makeBackplane(logger: Logger) throws -> Backplane {
        try .postgres(try PostgresConfiguration(url: url), logger: logger)
    }

    /// Rows of `it.connections` and `it.online`, and leases that ran out (by the server's
    /// clock), counted by one statement on a pool of its own.
    func leftovers() async throws -> Int {
        var configuration = try PostgresConfiguration(url: url)
        configuration.commandTimeout = .seconds(10)  // on a loaded machine, not a node's budget
        let database = try PostgresDatabase(configuration: configuration, logger: Logger(label: "postgres-leftovers"))
        let s = Self.schema
        return try await withThrowingTaskGroup(of: Int?.self) { group in
            group.addTask {
                await database.client.run()
                return nil
            }
            group.addTask {
                let count: Int =
                    try await database.first("leftovers", Int.self) {
                        """
                        SELECT (SELECT count(*) FROM \(unescaped: s).connections) + (SELECT count(*) FROM \(unescaped: s).online)
                             + (SELECT count(*) FROM \(unescaped: s).leases WHERE expires <= now())
                        """
                    } ?? 0
                return count
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let count = result { return count }
            }
            return 0
        }
    }
}
