import ImNATS
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

@Suite("NATS backplane conformance", .enabled(if: natsAvailable))
struct NATSConformanceTests {
    @Test(arguments: BusConformance.Check.allCases)
    func bus(_ check: BusConformance.Check) async throws {
        guard check != .survivesBackendRestart else {
            let server = try await LocalServer.nats()
            let configuration = NATSConfiguration(servers: ["nats://127.0.0.1:\(server.port)"], prefix: "restart")
            do {
                let outcome = try await BusConformance(
                    restartBackend: {
                        try await server.kill()
                        try await server.restart()
                    },
                    makeBus: { try NATSBus(configuration: configuration, logger: Logger(label: "nats-conformance")) }
                ).run(check)
                #expect(outcome == .passed)
            } catch {
                try? await server.kill()
                throw error
            }
            try await server.kill()
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
            let server = try await LocalServer.nats()
            let configuration = NATSConfiguration(servers: ["nats://127.0.0.1:\(server.port)"], prefix: "restart")
            do {
                let outcome = try await PresenceConformance(
                    restartBackend: {
                        try await server.kill()
                        try await server.restart()
                    },
                    makePresence: {
                        try NATSPresence(configuration: configuration, logger: Logger(label: "nats-conformance"))
                    }
                ).run(check)
                #expect(outcome == .passed)
            } catch {
                try? await server.kill()
                throw error
            }
            try await server.kill()
            return
        }
        let configuration = try await SharedNATS.configuration()
        let outcome = try await PresenceConformance(makePresence: {
            try NATSPresence(configuration: configuration, logger: Logger(label: "nats-conformance"))
        }).run(check)
        #expect(outcome == .passed)
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
