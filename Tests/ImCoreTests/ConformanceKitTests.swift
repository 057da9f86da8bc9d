import ImCore
import ImTesting
import NIOCore
import Synchronization
import Testing

/// The conformance kit itself fails a plugin that breaks the lifecycle and error clauses.
@Suite("Conformance kit catches broken plugins")
struct ConformanceKitTests {
    @Test("an error that is not a BackplaneError fails the check, naming the call and the type")
    func foreignErrorFails() async throws {
        let failure = await #expect(throws: ConformanceFailure.self) {
            try await BusConformance(makeBus: { MisbehavingBus(.foreignError) }).run(.callsBeforeRunWaitOrThrow)
        }
        #expect(failure?.message.contains("not a BackplaneError") == true, "\(String(describing: failure))")
        #expect(failure?.message.contains("PluginSpecificError") == true, "\(String(describing: failure))")
    }

    @Test("a call before run() that neither returns nor throws within the timeout fails the check")
    func unboundedCallFails() async throws {
        let failure = await #expect(throws: ConformanceFailure.self) {
            try await BusConformance(timeout: .milliseconds(300), makeBus: { MisbehavingBus(.hang) })
                .run(.callsBeforeRunWaitOrThrow)
        }
        #expect(failure?.message.contains("neither returned nor threw") == true, "\(String(describing: failure))")
    }

    @Test("a well-behaved bus passes the same checks")
    func wellBehavedPasses() async throws {
        #expect(try await BusConformance(makeBus: { MisbehavingBus(nil) }).run(.callsBeforeRunWaitOrThrow) == .passed)
    }
}

/// An error type of the plugin's own, which must not escape a backplane.
private struct PluginSpecificError: Error {}

/// A memory bus that misbehaves in `publish` until `run()` starts.
private final class MisbehavingBus: Bus {
    enum Fault { case foreignError, hang }

    private let inner = MemoryBus()
    private let fault: Fault?
    private let running = Atomic<Bool>(false)

    init(_ fault: Fault?) { self.fault = fault }

    var health: BackplaneHealth { inner.health }

    func run() async throws {
        running.store(true, ordering: .releasing)
        try await inner.run()
    }

    func publish(_ message: ByteBuffer, to subject: String) async throws {
        if !running.load(ordering: .acquiring) {
            switch fault {
            case .foreignError?: throw PluginSpecificError()
            case .hang?: try await Task.sleep(for: .seconds(3600))
            case nil: break
            }
        }
        try await inner.publish(message, to: subject)
    }

    func publish(_ batch: [BusMessage]) async throws { try await inner.publish(batch) }

    func makeSubscriber() async throws -> any BusSubscriber { try await inner.makeSubscriber() }
}
