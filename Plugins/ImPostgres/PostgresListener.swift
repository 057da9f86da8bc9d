import ImBackplane
import Logging
import Metrics
import NIOCore
import NIOSSL
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The connection a process listens on: opened by ``run()``, checked every second (a hung
/// server makes the bus `.down`), opened again after it is lost, with every subscriber's
/// channels listened to again.
final class PostgresListener: Sendable {
    private struct State {
        var connection: PostgresConnection?
        var subscribers: [ObjectIdentifier: PostgresSubscriber] = [:]
        var health: BackplaneHealth = .down("postgres: not listening yet")
    }

    private let state = Mutex(State())
    let database: PostgresDatabase
    private let nextID = Atomic<Int>(1)
    private let drops = Atomic<Int64>(0)
    private let dropCounter = Counter(label: "imserver_postgres_dropped_messages")

    /// Messages dropped because a subscriber fell behind by its whole buffer.
    var droppedMessages: Int64 { drops.load(ordering: .relaxed) }

    /// A subscriber's stream was full: the oldest message waiting was dropped. Counted in
    /// `imserver_postgres_dropped_messages`, logged at the first and every 10,000th.
    func subscriberDropped() {
        let total = drops.add(1, ordering: .relaxed).newValue
        dropCounter.increment()
        if total == 1 || total % 10_000 == 0 {
            database.logger.warning(
                "a postgres bus subscriber fell behind by its whole buffer; dropping its oldest messages",
                metadata: ["droppedInAll": "\(total)"])
        }
    }

    init(database: PostgresDatabase) {
        self.database = database
    }

    var health: BackplaneHealth { state.withLock { $0.health } }

    /// The open connection, if any.
    var connection: PostgresConnection? { state.withLock { $0.connection } }

    func add(_ subscriber: PostgresSubscriber) {
        state.withLock { $0.subscribers[ObjectIdentifier(subscriber)] = subscriber }
    }

    func remove(_ subscriber: PostgresSubscriber) {
        state.withLock { _ = $0.subscribers.removeValue(forKey: ObjectIdentifier(subscriber)) }
    }

    /// Keeps a listening connection open until graceful shutdown.
    func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.listenUntilLost()
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        if let connection = state.withLock({ $0.connection }) { try? await connection.close() }
    }

    private func listenUntilLost() async {
        let database = self.database
        let configuration = database.configuration
        let connection: PostgresConnection
        do {
            var options = PostgresConnection.Configuration.Options()
            options.connectTimeout = .milliseconds(max(configuration.commandTimeout.wholeMilliseconds, 1))
            var settings = PostgresConnection.Configuration(
                host: configuration.host, port: configuration.port, username: configuration.username,
                password: configuration.password, database: configuration.database,
                tls: try Self.tls(for: configuration))
            settings.options = options
            let id = nextID.add(1, ordering: .relaxed).newValue
            connection = try await PostgresConnection.connect(
                configuration: settings, id: id, logger: database.logger)
        } catch {
            state.withLock { $0.health = .down("postgres: cannot open the listening connection: \(error)") }
            return
        }
        let subscribers = state.withLock { state in
            state.connection = connection
            return Array(state.subscribers.values)
        }
        do {
            for subscriber in subscribers { try await subscriber.attach(to: connection) }
        } catch {
            database.logger.warning("postgres: listening again failed: \(error)")
        }
        while !Task.isCancelled, !connection.isClosed {
            let answered =
                (try? await database.bounded("listener check") { () async throws -> Bool in
                    for try await _ in try await connection.query("SELECT 1", logger: database.logger) {}
                    return true
                }) ?? false
            state.withLock { $0.health = answered ? .up : .down("postgres: the listening connection does not answer") }
            try? await Task.sleep(for: .seconds(1))
        }
        let lost = state.withLock { state in
            state.connection = nil
            state.health = .down("postgres: listening connection lost")
            return Array(state.subscribers.values)
        }
        for subscriber in lost { subscriber.detach() }
        if !connection.isClosed { try? await connection.close() }
    }

    /// The connection TLS `configuration` asks for.
    static func tls(for configuration: PostgresConfiguration) throws -> PostgresConnection.Configuration.TLS {
        switch configuration.tls {
        case .disable:
            return .disable
        case .require:
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            return .require(try NIOSSLContext(configuration: tls))
        case .verifyFull:
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .fullVerification
            if let path = configuration.rootCertificate {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path))
            }
            return .require(try NIOSSLContext(configuration: tls))
        }
    }
}
