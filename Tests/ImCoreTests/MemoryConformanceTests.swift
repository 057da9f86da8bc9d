import ImCore
import ImTesting
import Testing

/// The in-process backplane runs the same conformance kit every backplane plugin runs.
@Suite("Memory backplane conformance")
struct MemoryConformanceTests {
    @Test("MemoryBus keeps the Bus contract", arguments: BusConformance.Check.allCases)
    func bus(_ check: BusConformance.Check) async throws {
        let outcome = try await BusConformance(makeBus: { MemoryBus() }).run(check)
        // A backend restart does not apply in-process: the check runs and records why.
        #expect((outcome == .passed) == (check != .survivesBackendRestart), "\(outcome)")
    }

    @Test("MemoryPresence keeps the Presence contract", arguments: PresenceConformance.Check.allCases)
    func presence(_ check: PresenceConformance.Check) async throws {
        let outcome = try await PresenceConformance(makePresence: { MemoryPresence() }).run(check)
        #expect((outcome == .passed) == (check != .survivesBackendRestart), "\(outcome)")
    }
}
