import ImBackplane
import ImTesting
import Logging
import NIOCore
import ServiceLifecycle
import Testing

@testable import ImPostgres

/// Runs `service` while `body` runs, and stops it after (whether `body` threw or not).
func withRunning<T: Sendable>(
    _ service: some Service, _ body: () async throws -> T
) async throws -> T {
    let running = Task { try await service.run() }
    do {
        let result = try await body()
        running.cancel()
        _ = await running.result
        return result
    } catch {
        running.cancel()
        _ = await running.result
        throw error
    }
}

/// What the PostgreSQL backplane does beyond the conformance kits: TLS, a database that
/// refuses the migration, a subscriber that falls behind.
@Suite("PostgreSQL backplane behaviour", .enabled(if: postgresAvailable))
struct PostgresBehaviourTests {
    @Test("a subscriber that does not read loses its oldest messages beyond its buffer, and they are counted")
    func slowSubscriberDropsAreCounted() async throws {
        let configuration = try await SharedPostgres.configuration(schema: "drops")
        let bus = try PostgresBus(
            configuration: configuration, logger: Logger(label: "pg-drops"), subscriberBufferLimit: 10)
        let subscriber = try await withRunning(bus) {
            try await waitUntil(timeout: .seconds(10)) { bus.health.isUp }
            let subscriber = try await bus.makeSubscriber()
            try await subscriber.subscribe(["drops"])
            try await bus.publish((0..<100).map { BusMessage(subject: "drops", payload: ByteBuffer(string: "m\($0)")) })
            try await waitUntil(timeout: .seconds(5)) { bus.droppedMessages == 90 }
            await subscriber.close()
            return subscriber
        }
        var kept: [String] = []
        for await message in subscriber.messages { kept.append(String(buffer: message.payload)) }
        #expect(kept == (90..<100).map { "m\($0)" }, "the newest 10 are kept")
    }

    @Test(
        "sslmode=verify-full with the server's CA and sslmode=require work; verify-full without that CA never comes up")
    func tls() async throws {
        let files = try LocalServer.certificateAuthorityAndServerCertificate()
        let server = try await LocalServer.postgres(tls: (files.certificate, files.key))
        do {
            let base = "postgres://postgres@127.0.0.1:\(server.port)/postgres?schema=tls&timeout=2"
            for url in [base + "&sslmode=verify-full&sslrootcert=\(files.authority)", base + "&sslmode=require"] {
                let backplane = try Backplane.postgres(
                    try PostgresConfiguration(url: url), logger: Logger(label: "pg-tls"))
                try await withRunning(backplane) {
                    try await waitUntil(timeout: .seconds(15)) { backplane.health.isUp }
                    let subscriber = try await backplane.bus.makeSubscriber()
                    try await subscriber.subscribe(["secure"])
                    try await backplane.bus.publish(ByteBuffer(string: "over tls"), to: "secure")
                    var iterator = subscriber.messages.makeAsyncIterator()
                    #expect(await iterator.next().map { String(buffer: $0.payload) } == "over tls", "\(url)")
                    await subscriber.close()
                    let record = ConnectionRecord(client: "alice", node: "n1", connection: ConnectionID(rawValue: "c1"))
                    #expect(try await backplane.presence.connect(record) == 1, "\(url)")
                    #expect(try await backplane.presence.disconnect(record) == 0, "\(url)")
                }
            }
            // The test CA is in no system store: the server is not trusted.
            let untrusted = try Backplane.postgres(
                try PostgresConfiguration(url: base + "&sslmode=verify-full"), logger: Logger(label: "pg-tls"))
            try await withRunning(untrusted) {
                await #expect(throws: BackplaneError.self) {
                    try await untrusted.presence.connect(
                        ConnectionRecord(client: "bob", node: "n1", connection: ConnectionID(rawValue: "c2")))
                }
                #expect(!untrusted.health.isUp)
            }
        } catch {
            try? await server.kill()
            throw error
        }
        try await server.kill()
    }

    @Test("a user who may not create the schema stops the backplane at start with PostgreSQL's reason")
    func migrationRefused() async throws {
        let configuration = try await SharedPostgres.configuration(schema: "refused")
        let admin = try PostgresDatabase(configuration: configuration, logger: Logger(label: "pg-admin"))
        try await withRunning(PostgresPresence(database: admin)) {
            try await admin.execute("create role") {
                "DO $$ BEGIN CREATE ROLE limited LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            }
        }
        var limited = configuration
        limited.username = "limited"
        let presence = try PostgresPresence(configuration: limited, logger: Logger(label: "pg-limited"))
        let started = ContinuousClock.now
        do {
            try await presence.run()
            Issue.record("the presence ran without its schema")
        } catch let error as BackplaneError {
            let text = "\(error)"
            #expect(text.contains("refused the schema migration of 'refused'"), "\(text)")
            #expect(text.contains("permission denied"), "PostgreSQL's own message: \(text)")
        }
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}
