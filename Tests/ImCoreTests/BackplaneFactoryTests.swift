import Foundation
import ImCore
import Logging
import Synchronization
import Testing

@Suite("Backplane factory")
struct BackplaneFactoryTests {
    let logger = Logger(label: "backplane-factory-tests")

    /// A recognisable backplane a registered maker returns, with the URL it was given.
    private final class Recorder: Sendable {
        let urls = Mutex<[URL]>([])
    }

    @Test(
        "memory:// builds a fresh in-process backplane",
        arguments: ["memory://", "memory://anything/here", "MEMORY://", "Memory:"])
    func memory(_ url: String) async throws {
        let factory = BackplaneFactory()
        let first = try await factory.makeBackplane(url: url, logger: logger)
        let second = try await factory.makeBackplane(url: url, logger: logger)
        #expect(first.bus is MemoryBus)
        #expect(first.presence is MemoryPresence)
        // Each call makes its own backplane: nothing is shared between them.
        #expect((first.bus as? MemoryBus) !== (second.bus as? MemoryBus))
        #expect((first.presence as? MemoryPresence) !== (second.presence as? MemoryPresence))
    }

    @Test("a new factory knows exactly memory")
    func defaultSchemes() {
        #expect(BackplaneFactory().schemes == ["memory"])
    }

    @Test("an unknown scheme is refused with the list of known schemes")
    func unknownScheme() async throws {
        var factory = BackplaneFactory()
        factory.register(scheme: "redis") { _, _ in .memory() }
        factory.register(scheme: "nats") { _, _ in .memory() }
        do {
            _ = try await factory.makeBackplane(url: "Kafka://broker:9092", logger: logger)
            Issue.record("an unknown scheme built a backplane")
        } catch let error as BackplaneConfigurationError {
            guard case .unknownScheme(let scheme, let known) = error else {
                Issue.record("expected unknownScheme, got \(error)")
                return
            }
            #expect(scheme == "kafka")
            #expect(Set(known) == ["memory", "nats", "redis"])
            #expect(known == known.sorted())
            let description = error.description
            #expect(description.contains("kafka"))
            for name in ["memory://", "nats://", "redis://"] {
                #expect(description.contains(name), "\(description) should mention \(name)")
            }
        }
    }

    @Test(
        "a URL without a scheme is invalid",
        arguments: ["", "   ", "no scheme here", "//host:1234/path", "/just/a/path", "127.0.0.1:6379"])
    func invalidURL(_ url: String) async throws {
        let factory = BackplaneFactory()
        do {
            let backplane = try await factory.makeBackplane(url: url, logger: logger)
            Issue.record("'\(url)' built \(backplane)")
        } catch let error as BackplaneConfigurationError {
            #expect(error == .invalidURL(url), "'\(url)': \(error)")
            #expect(error.description.contains("memory://"))
        }
    }

    @Test("register(scheme:) adds a scheme, matched without regard to case")
    func registerScheme() async throws {
        let recorder = Recorder()
        var factory = BackplaneFactory()
        factory.register(scheme: "ReDiS") { url, _ in
            recorder.urls.withLock { $0.append(url) }
            return .memory()
        }
        #expect(factory.schemes == ["memory", "redis"])
        for url in ["redis://127.0.0.1:6379", "REDIS://host:1/0", "Redis://h"] {
            let backplane = try await factory.makeBackplane(url: url, logger: logger)
            #expect(backplane.bus is MemoryBus)
        }
        // The maker got the parsed URLs, in order, host and port intact.
        let urls = recorder.urls.withLock { $0 }
        #expect(urls.count == 3)
        #expect(urls.first?.host == "127.0.0.1")
        #expect(urls.first?.port == 6379)
        #expect(urls.last?.host == "h")
    }

    @Test("registering a scheme again replaces its maker; registering memory overrides the built-in")
    func reRegister() async throws {
        let recorder = Recorder()
        var factory = BackplaneFactory()
        factory.register(scheme: "x") { _, _ in throw CancellationError() }
        factory.register(scheme: "X") { url, _ in
            recorder.urls.withLock { $0.append(url) }
            return .memory()
        }
        #expect(factory.schemes == ["memory", "x"])
        _ = try await factory.makeBackplane(url: "x://one", logger: logger)
        #expect(recorder.urls.withLock { $0.count } == 1)

        factory.register(scheme: "memory") { url, _ in
            recorder.urls.withLock { $0.append(url) }
            return .memory()
        }
        _ = try await factory.makeBackplane(url: "memory://", logger: logger)
        #expect(recorder.urls.withLock { $0.count } == 2)
    }

    @Test("a maker's error reaches the caller")
    func makerErrorPropagates() async throws {
        struct Boom: Error, Equatable {}
        var factory = BackplaneFactory()
        factory.register(scheme: "boom") { _, _ in throw Boom() }
        await #expect(throws: Boom()) { try await factory.makeBackplane(url: "boom://", logger: logger) }
        // The failing scheme does not break the others.
        #expect(try await factory.makeBackplane(url: "memory://", logger: logger).bus is MemoryBus)
    }

    @Test("a copy of a factory is independent of the original")
    func valueSemantics() {
        let original = BackplaneFactory()
        var copy = original
        copy.register(scheme: "extra") { _, _ in .memory() }
        #expect(original.schemes == ["memory"])
        #expect(copy.schemes == ["extra", "memory"])
    }
}

@Suite("Backplane health")
struct BackplaneHealthTests {
    @Test("one health for both halves: up only when both are, else each half that is down with its reason")
    func combined() {
        #expect(BackplaneHealth.combined(bus: .up, presence: .up) == .up)
        #expect(BackplaneHealth.combined(bus: .down("refused"), presence: .up) == .down("bus: refused"))
        #expect(BackplaneHealth.combined(bus: .up, presence: .down("timeout")) == .down("presence: timeout"))
        #expect(BackplaneHealth.combined(bus: .down("a"), presence: .down("b")) == .down("bus: a; presence: b"))
        #expect(Backplane.memory().health == .up)
    }
}
