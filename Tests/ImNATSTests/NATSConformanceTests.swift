@testable import ImNATS
import ImBackplane
import NIOCore
import ImTesting
import Logging
import Testing

/// One nats-server for the conformance suites of this process.
enum SharedNATS {
    static let server = Task { try await LocalServer.nats() }

    static func configuration() async throws -> NATSConfiguration {
        let server = try await server.value
        return NATSConfiguration(servers: ["nats://127.0.0.1:\(server.port)"], prefix: "conformance")
    }
}

/// nats-server must be installed to run these; in CI its absence is a failure.
let natsAvailable = findExecutable("nats-server") != nil || isContinuousIntegration

/// Serialized: the kit's lease checks allow 300 ms for a renewal, and 39 checks at once on
/// 2 cores, next to the rest of the suite, starved nats.c's threads past that in CI.
@Suite("NATS backplane conformance", .enabled(if: natsAvailable), .serialized)
struct NATSConformanceTests {
    @Test(arguments: BusConformance.Check.allCases)
    func bus(_ check: BusConformance.Check) async throws {
        guard check != .survivesBackendRestart else {
            try await withDedicatedNATS { configuration, restart in
                let outcome = try await BusConformance(
                    restartBackend: restart,
                    makeBus: { try NATSBus(configuration: configuration, logger: Logger(label: "nats-conformance")) }
                ).run(check)
                #expect(outcome == .passed)
            }
            return
        }
        let configuration = try await SharedNATS.configuration()
        let outcome = try await BusConformance(makeBus: {
            try NATSBus(configuration: configuration, logger: Logger(label: "nats-conformance"))
        }).run(check)
        #expect(outcome == .passed)
    }

    @Test(arguments: PresenceConformance.Check.allCases)
    func presence(_ check: PresenceConformance.Check) async throws {
        guard check != .survivesBackendRestart else {
            try await withDedicatedNATS { configuration, restart in
                let outcome = try await PresenceConformance(
                    restartBackend: restart,
                    makePresence: {
                        try NATSPresence(configuration: configuration, logger: Logger(label: "nats-conformance"))
                    }
                ).run(check)
                #expect(outcome == .passed)
            }
            return
        }
        let configuration = try await SharedNATS.configuration()
        let outcome = try await PresenceConformance(makePresence: {
            try NATSPresence(configuration: configuration, logger: Logger(label: "nats-conformance"))
        }).run(check)
        #expect(outcome == .passed)
    }

    /// Runs `body` with a nats-server of its own and a closure that restarts it (killed, as a
    /// crash would, then started again on the same port with its store); stops it afterwards.
    private func withDedicatedNATS(
        _ body: (NATSConfiguration, @escaping @Sendable () async throws -> Void) async throws -> Void
    ) async throws {
        let server = try await LocalServer.nats()
        let configuration = NATSConfiguration(servers: ["nats://127.0.0.1:\(server.port)"], prefix: "restart")
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

    @Test("while NATS is away a publish fails at once and is never sent late, after the reconnect")
    func publishDuringOutageFailsAndIsNotSentLate() async throws {
        let server = try await LocalServer.nats()
        defer { Task { _ = try? await server.stop() } }
        let configuration = NATSConfiguration(servers: ["nats://127.0.0.1:\(server.port)"], prefix: "outage")
        let bus = try NATSBus(configuration: configuration, logger: Logger(label: "nats-outage"))
        let running = Task { try await bus.run() }
        defer { running.cancel() }
        try await waitUntil(timeout: .seconds(10)) { bus.health.isUp }
        let subscriber = try await bus.makeSubscriber()
        try await subscriber.subscribe(["outage"])
        try await bus.publish(ByteBuffer(string: "before"), to: "outage")
        var iterator = subscriber.messages.makeAsyncIterator()
        #expect(await iterator.next().map { String(buffer: $0.payload) } == "before")
        try await server.kill()
        try await waitUntil(timeout: .seconds(10)) { !bus.health.isUp }
        let started = ContinuousClock.now
        let failure = await #expect(throws: BackplaneError.self) {
            try await bus.publish(ByteBuffer(string: "during"), to: "outage")
        }
        #expect(failure.map { "\($0)".contains("publish failed") } == true, "\(String(describing: failure))")
        #expect(ContinuousClock.now - started < .milliseconds(500), "the failed publish took too long")
        try await server.restart()
        try await waitUntil(timeout: .seconds(10)) { bus.health.isUp }
        // Delivered in order on one connection: "after" arrives, "during" must not come first.
        try await waitUntil(timeout: .seconds(10)) {
            (try? await bus.publish(ByteBuffer(string: "after"), to: "outage")) != nil
        }
        #expect(await iterator.next().map { String(buffer: $0.payload) } == "after")
        await subscriber.close()
    }

    @Test("a subscriber that does not read loses its oldest messages beyond its buffer, and they are counted")
    func slowSubscriberDropsAreCounted() async throws {
        let configuration = try await SharedNATS.configuration()
        let bus = try NATSBus(
            configuration: configuration, logger: Logger(label: "nats-drops"), subscriberBufferLimit: 10)
        let subscriber = try await bus.makeSubscriber()
        try await waitUntil(timeout: .seconds(10)) { bus.health.isUp }
        try await subscriber.subscribe(["drops"])
        for index in 0..<100 { try await bus.publish(ByteBuffer(string: "m\(index)"), to: "drops") }
        try await waitUntil(timeout: .seconds(5)) { bus.droppedMessages == 90 }
        var kept: [String] = []
        await subscriber.close()
        for await message in subscriber.messages { kept.append(String(buffer: message.payload)) }
        #expect(kept == (90..<100).map { "m\($0)" }, "the newest 10 are kept")
    }

    @Test("tls:// with a CA file: publish and subscribe over TLS")
    func tls() async throws {
        let pair = try LocalServer.selfSignedCertificate()
        let server = try await LocalServer.nats(tls: pair)
        do {
            let url = "tls://127.0.0.1:\(server.port)?prefix=tls&ca=\(pair.certificate)"
            let bus = try NATSBus(configuration: try NATSConfiguration(url: url), logger: Logger(label: "nats-tls"))
            try await waitUntil(timeout: .seconds(10)) { bus.health.isUp }
            let subscriber = try await bus.makeSubscriber()
            try await subscriber.subscribe(["secure"])
            try await bus.publish(ByteBuffer(string: "over tls"), to: "secure")
            var iterator = subscriber.messages.makeAsyncIterator()
            #expect(await iterator.next().map { String(buffer: $0.payload) } == "over tls")
            await subscriber.close()
        } catch {
            try? await server.kill()
            throw error
        }
        try await server.kill()
    }

    @Test("nats:// URLs parse with credentials, several servers and parameters; bad ones are refused")
    func urlParsing() throws {
        let full = try NATSConfiguration(url: "nats://app:s3cr%40t@a.local:4223,b.local?prefix=chat&timeout=0.5")
        #expect(
            full
                == NATSConfiguration(
                    servers: ["nats://a.local:4223", "nats://b.local:4222"], user: "app", password: "s3cr@t",
                    prefix: "chat", commandTimeout: .milliseconds(500)))
        #expect(try NATSConfiguration(url: "nats://tok@h").token == "tok")
        #expect(
            try NATSConfiguration(url: "tls://h?ca=/etc/ca.pem")
                == NATSConfiguration(servers: ["tls://h:4222"], tls: true, caFile: "/etc/ca.pem"))
        for bad in [
            "redis://h", "nats://", "nats://h:0", "nats://h:x", "nats://h?prefix=a.b", "nats://h?timeout=-1",
            "nats://h?ca=/x.pem", "tls://h?ca=", "nats://h?bogus=1", "nats://h?replicas=0", "nats://h?replicas=6",
        ] {
            #expect(throws: NATSConfigurationError.self, "\(bad)") { try NATSConfiguration(url: bad) }
        }
    }
}

@Suite("NATS presence internals")
struct NATSPresenceInternalsTests {
    @Test("server timestamps (RFC 3339, nanoseconds, UTC) read as nanoseconds since 1970")
    func timestamps() {
        #expect(NATSReply.nanoseconds(rfc3339: "1970-01-01T00:00:00Z") == 0)
        #expect(NATSReply.nanoseconds(rfc3339: "2026-11-30T01:40:00.123456789Z") == 1_796_002_800_123_456_789)
        #expect(NATSReply.nanoseconds(rfc3339: "2024-02-29T23:59:59.5Z") == 1_709_251_199_500_000_000)
        #expect(NATSReply.nanoseconds(rfc3339: "2024-02-29 23:59:59Z") == nil)
        #expect(NATSReply.nanoseconds(rfc3339: "garbage") == nil)
    }

    @Test("KV keys: any id is one token of allowed bytes and reads back")
    func keys() {
        for id in ["alice", "a.b", "*", ">", "with space", "ünï", "=41", "", String(repeating: "é", count: 100)] {
            let key = Keys.user(ClientID(rawValue: id))
            #expect(
                key.utf8.allSatisfy { byte in
                    SubjectToken.isPlain(byte) || byte == UInt8(ascii: "=") || byte == UInt8(ascii: ".")
                })
            #expect(key.split(separator: ".").count == 2, "\(key)")
            #expect(Keys.user(from: key)?.rawValue == id)
        }
        let member = Keys.member(ClientID(rawValue: "u.1"), of: "room.*")
        #expect(Keys.membership(from: member)?.channel == "room.*")
        #expect(Keys.membership(from: member)?.user == ClientID(rawValue: "u.1"))
    }

    @Test("users and nodes that come and go leave nothing in the buckets (markers are removed after their linger)")
    func deletesLeaveNothing() async throws {
        let configuration = try await SharedNATS.configuration()
        let presence = try NATSPresence(
            client: NATSClient(configuration: configuration, logger: Logger(label: "nats-markers")), ownsClient: true,
            logger: Logger(label: "nats-markers"), markerLinger: .seconds(5))
        defer { presence.client.close() }
        try await waitUntil(timeout: .seconds(10)) { presence.client.health.isUp }
        let user = ClientID(rawValue: "marker-user-\(UInt64.random(in: 0...UInt64.max))")
        let node = NodeID(rawValue: "marker-node-\(UInt64.random(in: 0...UInt64.max))")
        let record = ConnectionRecord(client: user, node: node, connection: ConnectionID(rawValue: "c1"))
        _ = try await presence.renewLease(of: node, ttl: .seconds(60))
        #expect(try await presence.connect(record) == 1)
        try await presence.join(user, channels: ["marker-room"])
        #expect(try await presence.disconnect(record) == 0)
        let userMarker = try await presence.connections.get([Keys.user(user)])[0]
        #expect(userMarker?.isDeleted == true, "a watcher must see a deleted user as a marker first")
        try await presence.leave(user, channels: ["marker-room"])
        _ = try await presence.removeNode(node)
        let channels = try await presence.channelDirectory.get([
            Keys.channels(of: user), Keys.member(user, of: "marker-room"),
        ])
        #expect(channels.allSatisfy { $0 == nil }, "a channel key or marker is left: \(channels)")
        try await waitUntil(timeout: .seconds(20)) {
            try await presence.connections.get([Keys.user(user), Keys.lease(node)]).allSatisfy { $0 == nil }
        }
    }

    @Test("nodes(of:) from the in-process copy sees every connect and disconnect acknowledged before the call")
    func replicaReadsItsWrites() async throws {
        let configuration = try await SharedNATS.configuration()
        let reader = try NATSPresence(configuration: configuration, logger: Logger(label: "nats-reader"))
        let writer = try NATSPresence(configuration: configuration, logger: Logger(label: "nats-writer"))
        defer {
            reader.client.close()
            writer.client.close()
        }
        try await waitUntil(timeout: .seconds(10)) { reader.client.health.isUp && writer.client.health.isUp }
        _ = try await reader.nodes(of: ["nobody"])
        try await waitUntil(timeout: .seconds(10)) { reader.replica.isLoaded }
        let node = NodeID(rawValue: "replica-node")
        for index in 0..<100 {
            let user = ClientID(rawValue: "replica-\(index)-\(UInt64.random(in: 0...UInt64.max))")
            let record = ConnectionRecord(client: user, node: node, connection: ConnectionID(rawValue: "c\(index)"))
            #expect(try await writer.connect(record) == 1)
            #expect(try await reader.nodes(of: [user]) == [user: [node]], "right after connect #\(index)")
            #expect(try await writer.disconnect(record) == 0)
            #expect(try await reader.nodes(of: [user]) == [:], "right after disconnect #\(index)")
        }
        #expect(reader.replica.answered.load(ordering: .relaxed) >= 190, "the copy answered (not direct reads)")
    }

    @Test("a lease that ran out is not live when renewed, though nobody reaped it (one round trip per renewal)")
    func leaseRunsOutWithoutReaper() async throws {
        var configuration = try await SharedNATS.configuration()
        configuration.prefix = "leases"
        let presence = try NATSPresence(configuration: configuration, logger: Logger(label: "nats-leases"))
        defer { presence.client.close() }
        try await waitUntil(timeout: .seconds(10)) { presence.client.health.isUp }
        let node = NodeID(rawValue: "lease-\(UInt64.random(in: 0...UInt64.max))")
        #expect(try await presence.renewLease(of: node, ttl: .seconds(1)) == false, "a new node")
        #expect(try await presence.renewLease(of: node, ttl: .seconds(1)) == true, "renewed at once")
        // The lease's time passing is what this test is about: nothing else runs here to reap it.
        try await Task.sleep(for: .milliseconds(1500))
        #expect(try await presence.renewLease(of: node, ttl: .seconds(60)) == false, "ran out, unreaped")
        #expect(try await presence.renewLease(of: node, ttl: .seconds(60)) == true, "live again")
        _ = try await presence.removeNode(node)
        #expect(try await presence.renewLease(of: node, ttl: .seconds(60)) == false, "removed")
        _ = try await presence.removeNode(node)
    }

    @Test("a NATS without JetStream stops the presence's run() with a clear message")
    func refusesServerWithoutJetStream() async throws {
        guard let binary = findExecutable("nats-server") else { throw LocalServerError.notInstalled("nats-server") }
        let port = try await freePort()
        let server = try await LocalServer.start(
            binary, arguments: ["-a", "127.0.0.1", "-p", String(port)], port: port, stopGrace: .seconds(5))
        defer { Task { _ = try? await server.stop() } }
        let presence = try NATSPresence(
            configuration: NATSConfiguration(servers: ["nats://127.0.0.1:\(port)"]), logger: Logger(label: "no-js"))
        let started = ContinuousClock.now
        do {
            try await presence.run()
            Issue.record("run() returned instead of refusing a server without JetStream")
        } catch {
            #expect("\(error)".contains("has no JetStream"), "\(error)")
            #expect("\(error)".contains("-js"), "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(!presence.health.isUp)
    }
}
