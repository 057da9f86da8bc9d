import ImTesting
import Synchronization
import Testing

@testable import ImServer

/// Single writes pass the gate together; a reconciliation holds it alone.
@Suite("Reconciliation gate")
struct ReconciliationGateTests {
    /// Records what ran, in order.
    private final class Trace: Sendable {
        let steps = Mutex([String]())
        func add(_ step: String) { steps.withLock { $0.append(step) } }
        var all: [String] { steps.withLock { $0 } }
    }

    @Test("a reconciliation waits for the write under way; writes that come meanwhile wait for it, then run")
    func exclusive() async throws {
        let gate = ReconciliationGate()
        let trace = Trace()
        let (writing, finishWrite) = AsyncStream.makeStream(of: Void.self)
        let first = Task {
            await gate.write {
                trace.add("write 1 starts")
                for await _ in writing { break }
                trace.add("write 1 ends")
            }
        }
        try await waitUntil { trace.all == ["write 1 starts"] }
        let reconciliation = Task { await gate.reconcile { trace.add("reconcile") } }
        // The reconciliation waits for write 1; a second write waits behind the reconciliation.
        try await waitUntil { gate.isReconciliationWaiting }
        let second = Task { await gate.write { trace.add("write 2") } }
        try await waitUntil { gate.waitingWrites == 1 }
        #expect(trace.all == ["write 1 starts"])
        finishWrite.yield()
        await first.value
        await reconciliation.value
        await second.value
        #expect(trace.all == ["write 1 starts", "write 1 ends", "reconcile", "write 2"])
    }

    @Test("writes run together while no reconciliation runs")
    func writesTogether() async throws {
        let gate = ReconciliationGate()
        let trace = Trace()
        let (release, releaseAll) = AsyncStream.makeStream(of: Void.self)
        let writes = (0..<3).map { _ in
            Task {
                await gate.write {
                    trace.add("inside")
                    for await _ in release { break }
                }
            }
        }
        try await waitUntil { trace.all.count == 3 }
        releaseAll.finish()
        for write in writes { await write.value }
    }
}
