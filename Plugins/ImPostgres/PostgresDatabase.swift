import Foundation
import ImBackplane
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The plugin's pool (postgres-nio's `PostgresClient`), its schema and its health, and the
/// one way the plugin runs a statement: bounded by the command timeout (a hung server cannot
/// make a caller wait longer) and failing only with ``BackplaneError``.
final class PostgresDatabase: Sendable {
    let configuration: PostgresConfiguration
    let client: PostgresClient
    let logger: Logger
    var schema: String { configuration.schema }
    private let state = Mutex<(health: BackplaneHealth, migrated: Bool)>((.down("not connected yet"), false))

    init(configuration: PostgresConfiguration, logger: Logger) throws(BackplaneError) {
        do {
            try configuration.validate()
        } catch {
            throw BackplaneError.unavailable("\(error)")
        }
        self.configuration = configuration
        self.logger = logger
        var options = PostgresClient.Configuration.Options()
        options.maximumConnections = configuration.poolSize
        options.minimumConnections = 1
        options.connectTimeout = configuration.commandTimeout
        options.keepAliveBehavior = .init(frequency: .seconds(10))
        options.additionalStartupParameters = [
            ("statement_timeout", String(configuration.commandTimeout.wholeMilliseconds)),
            ("application_name", "imserver"),
        ]
        var postgres = PostgresClient.Configuration(
            host: configuration.host, port: configuration.port, username: configuration.username,
            password: configuration.password, database: configuration.database,
            tls: try Self.tls(for: configuration))
        postgres.options = options
        client = PostgresClient(configuration: postgres, backgroundLogger: logger)
    }

    /// The TLS settings `configuration` asks for.
    static func tls(for configuration: PostgresConfiguration) throws(BackplaneError) -> PostgresClient.Configuration.TLS
    {
        switch configuration.tls {
        case .disable:
            return .disable
        case .require:
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            return .require(tls)
        case .verifyFull:
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .fullVerification
            if let path = configuration.rootCertificate {
                do {
                    tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path))
                } catch {
                    throw BackplaneError.unavailable("postgres: cannot read the CA file \(path): \(error)")
                }
            }
            return .require(tls)
        }
    }

    var health: BackplaneHealth { state.withLock { $0.health } }

    /// Runs the pool; once the server answers, migrates the schema (a database that refuses
    /// the migration stops this with its message); then checks health every second and
    /// sweeps expired tokens and old payloads every minute, until graceful shutdown.
    func run() async throws {
        let client = self.client
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            // The pool stops only after the maintenance loop did (it may be using the pool).
            defer { group.cancelAll() }
            try await cancelWhenGracefulShutdown { try await self.maintain() }
        }
    }

    private func maintain() async throws {
        var lastSweep = ContinuousClock.now
        while !Task.isCancelled {
            let up: Bool
            do {
                _ = try await all("health check", Int.self) { "SELECT 1" }
                up = true
            } catch {
                // The server that comes back may be a new one, without the schema: migrate
                // again then (it is one short transaction when nothing is missing).
                state.withLock { $0 = (.down("postgres: \(error)"), false) }
                up = false
            }
            if up {
                if !state.withLock({ $0.migrated }) {
                    let refusal: String?
                    do {
                        refusal = try await migrate()
                    } catch {
                        logger.debug("postgres migration not done yet: \(error)")
                        refusal = nil
                    }
                    if let refusal {
                        throw BackplaneError.unavailable(
                            "postgres refused the schema migration of '\(schema)' in database '\(configuration.database)': "
                                + refusal + " (the user needs CREATE on the database, or create the schema for it)")
                    }
                }
                let migrated = state.withLock { $0.migrated }
                let changed = state.withLock { current in
                    let next: BackplaneHealth = migrated ? .up : .down("postgres schema not migrated yet")
                    defer { current.health = next }
                    return current.health.isUp != next.isUp
                }
                if changed { logger.info("postgres \(migrated ? "up" : "reachable, schema not ready")") }
                if migrated, ContinuousClock.now - lastSweep > .seconds(60) {
                    lastSweep = .now
                    try? await execute("sweep") {
                        "DELETE FROM \(unescaped: schema).tokens WHERE expires < now() - interval '1 minute'"
                    }
                    try? await execute("sweep") {
                        "DELETE FROM \(unescaped: schema).payloads WHERE created < now() - interval '5 minutes'"
                    }
                }
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Migrates the schema (bounded: five command timeouts) and notes it done; returns
    /// PostgreSQL's message when the user may not (`insufficient_privilege`), which no retry
    /// fixes.
    private func migrate() async throws(BackplaneError) -> String? {
        let schema = PostgresSchema(name: self.schema)
        let client = self.client
        let logger = self.logger
        let refusal: String? = try await bounded("migration", timeout: configuration.commandTimeout * 5) {
            do {
                try await schema.migrate(on: client, logger: logger)
                return nil
            } catch {
                guard let server = Self.serverError(in: error), server.serverInfo?[.sqlState] == "42501" else {
                    throw error
                }
                return server.serverInfo?[.message] ?? "\(server)"
            }
        }
        if refusal == nil { state.withLock { $0.migrated = true } }
        return refusal
    }

    // MARK: Statements

    /// The first row of `query`, decoded, or `nil` without a row.
    func first<each Column: PostgresDecodable & Sendable>(
        _ what: String, _ type: (repeat each Column).Type, _ query: () -> PostgresQuery
    ) async throws(BackplaneError) -> (repeat each Column)? {
        let rows = try await all(what, type, query)
        return rows.first
    }

    /// Every row of `query`, decoded.
    func all<each Column: PostgresDecodable & Sendable>(
        _ what: String, _ type: (repeat each Column).Type, _ query: () -> PostgresQuery
    ) async throws(BackplaneError) -> [(repeat each Column)] {
        let statement = query()
        let client = self.client
        let logger = self.logger
        return try await bounded(what) {
            try await Self.collect(try await client.query(statement, logger: logger), type)
        }
    }

    /// Runs `query`, discarding its rows.
    func execute(_ what: String, _ query: () -> PostgresQuery) async throws(BackplaneError) {
        let statement = query()
        let client = self.client
        let logger = self.logger
        try await bounded(what) {
            for try await _ in try await client.query(statement, logger: logger) {}
        }
    }

    /// Runs `body` in one transaction (committed when it returns, rolled back when it throws).
    func transaction<T: Sendable>(
        _ what: String, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws(BackplaneError) -> T {
        let client = self.client
        let logger = self.logger
        return try await bounded(what) {
            try await client.withTransaction(logger: logger) { connection in try await body(connection, logger) }
        }
    }

    /// Every row of `query` on `connection` (inside a transaction), decoded.
    static func rows<each Column: PostgresDecodable & Sendable>(
        on connection: PostgresConnection, logger: Logger, _ type: (repeat each Column).Type, _ query: PostgresQuery
    ) async throws -> [(repeat each Column)] {
        try await collect(try await connection.query(query, logger: logger), type)
    }

    private static func collect<each Column: PostgresDecodable & Sendable>(
        _ rows: PostgresRowSequence, _ type: (repeat each Column).Type
    ) async throws -> [(repeat each Column)] {
        var result: [(repeat each Column)] = []
        for try await row in rows.decode(type) { result.append(row) }
        return result
    }

    /// Runs `body` for at most the command timeout. A statement still running then (a hung
    /// server) is cancelled and left to finish on its own; the caller gets `timedOut`.
    func bounded<T: Sendable>(
        _ what: String, timeout limit: Duration? = nil, _ body: @escaping @Sendable () async throws -> T
    ) async throws(BackplaneError) -> T {
        let timeout = TimeAmount.milliseconds(max((limit ?? configuration.commandTimeout).wholeMilliseconds, 1))
        let result: Result<T, BackplaneError> = await withCheckedContinuation { continuation in
            let once = ResumeOnce(continuation)
            let task = Task {
                do {
                    once.resume(.success(try await body()))
                } catch let error as BackplaneError {
                    once.resume(.failure(error))
                } catch {
                    guard let server = Self.serverError(in: error) else {
                        once.resume(.failure(.unavailable("postgres \(what): \(error)")))
                        return
                    }
                    if Self.schemaMissingStates.contains(server.serverInfo?[.sqlState] ?? "") {
                        self.schemaWentMissing()
                    }
                    once.resume(.failure(.unavailable("postgres \(what): \(Self.describe(server))")))
                }
            }
            MultiThreadedEventLoopGroup.singleton.next().scheduleTask(in: timeout) {
                if once.resume(.failure(.timedOut(operation: "postgres \(what)"))) { task.cancel() }
            }
        }
        return try result.get()
    }

    /// `undefined_table` and `invalid_schema_name`: the server lost the schema (a new, empty
    /// server on the same address, or someone dropped it).
    static let schemaMissingStates: Set<String> = ["42P01", "3F000"]

    /// Makes the health check migrate again at once; `.down` until it did.
    private func schemaWentMissing() {
        let changed = state.withLock { state in
            defer { state = (.down("postgres schema missing; migrating again"), false) }
            return state.migrated
        }
        if changed { logger.warning("postgres lost the schema \(schema); migrating again") }
    }

    /// The PostgreSQL error behind `error`: itself, or what failed inside a transaction
    /// (postgres-nio wraps those in `PostgresTransactionError`).
    static func serverError(in error: any Error) -> PSQLError? {
        if let error = error as? PSQLError { return error }
        guard let transaction = error as? PostgresTransactionError else { return nil }
        for inner in [transaction.beginError, transaction.closureError, transaction.commitError] {
            if let server = inner as? PSQLError { return server }
        }
        return nil
    }

    /// A PostgreSQL error with the server's message (postgres-nio hides it from `description`).
    static func describe(_ error: PSQLError) -> String {
        if let message = error.serverInfo?[.message] {
            return message + (error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
        }
        return "\(error.code)"
    }
}

/// Resumes a continuation once; later calls do nothing (and say so).
final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Result<T, BackplaneError>, Never>?>

    init(_ continuation: CheckedContinuation<Result<T, BackplaneError>, Never>) {
        self.continuation = Mutex(continuation)
    }

    /// Resumes with `result` if nobody did yet; returns whether this call did.
    @discardableResult
    func resume(_ result: Result<T, BackplaneError>) -> Bool {
        guard let continuation = self.continuation.withLock({ $0.take() }) else { return false }
        continuation.resume(returning: result)
        return true
    }
}
