import Synchronization

/// Keeps a reconciliation of Presence apart from the node's single registrations and
/// unregistrations.
///
/// A reconciliation replaces the node's connections in Presence with a snapshot of its live
/// ones. A connection that opened after the snapshot and registered before the replacement ran
/// would be removed by it, after its `ready`, and listed offline; one that closed after the
/// snapshot would be put back. So single Presence writes pass the gate together, and a
/// reconciliation holds it alone: it waits for the writes under way to finish, and new ones
/// wait for it (at most one command timeout: every backplane call is bounded). A
/// reconciliation is rare (after an outage, a lost lease or a failed write), so a handshake
/// waits for one only then.
final class ReconciliationGate: Sendable {
    private struct State {
        /// Single writes under way.
        var passing = 0
        /// Whether a reconciliation holds the gate.
        var reconciling = false
        var waitingToPass: [CheckedContinuation<Void, Never>] = []
        var waitingToReconcile: [CheckedContinuation<Void, Never>] = []

        /// Whether a single write may start now (one waits while a reconciliation runs or waits).
        var admitsWrite: Bool { !reconciling && waitingToReconcile.isEmpty }
    }

    private let state = Mutex(State())

    /// How many single writes wait for a reconciliation (for tests).
    var waitingWrites: Int { state.withLock { $0.waitingToPass.count } }

    /// Whether a reconciliation waits for writes under way (for tests).
    var isReconciliationWaiting: Bool { state.withLock { !$0.waitingToReconcile.isEmpty } }

    /// Runs `write` (one connection's registration or unregistration in Presence), after the
    /// reconciliation under way or waiting, if any.
    func write<T>(_ write: () async throws -> T) async rethrows -> T {
        await enterWrite()
        defer { leaveWrite() }
        return try await write()
    }

    /// Runs `reconciliation` alone: after the single writes under way, before any new one.
    func reconcile<T>(_ reconciliation: () async throws -> T) async rethrows -> T {
        await enterReconciliation()
        defer { leaveReconciliation() }
        return try await reconciliation()
    }

    private func enterWrite() async {
        let admitted = state.withLock { state in
            guard state.admitsWrite else { return false }
            state.passing += 1
            return true
        }
        if admitted { return }
        await withCheckedContinuation { continuation in
            let admitted = state.withLock { state in
                guard state.admitsWrite else {
                    state.waitingToPass.append(continuation)
                    return false
                }
                state.passing += 1
                return true
            }
            if admitted { continuation.resume() }
        }
    }

    private func leaveWrite() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.passing -= 1
            guard state.passing == 0, !state.reconciling, !state.waitingToReconcile.isEmpty else { return nil }
            state.reconciling = true
            return state.waitingToReconcile.removeFirst()
        }
        next?.resume()
    }

    private func enterReconciliation() async {
        await withCheckedContinuation { continuation in
            let admitted = state.withLock { state in
                guard !state.reconciling, state.passing == 0, state.waitingToReconcile.isEmpty else {
                    state.waitingToReconcile.append(continuation)
                    return false
                }
                state.reconciling = true
                return true
            }
            if admitted { continuation.resume() }
        }
    }

    /// Lets the writes that waited through first (so reconciliations in a row cannot starve
    /// handshakes); the next reconciliation starts once they finished.
    private func leaveReconciliation() {
        let (writes, next) = state.withLock {
            state -> ([CheckedContinuation<Void, Never>], CheckedContinuation<Void, Never>?) in
            state.reconciling = false
            let writes = state.waitingToPass
            state.waitingToPass = []
            state.passing += writes.count
            guard state.passing == 0, !state.waitingToReconcile.isEmpty else { return (writes, nil) }
            state.reconciling = true
            return (writes, state.waitingToReconcile.removeFirst())
        }
        for write in writes { write.resume() }
        next?.resume()
    }
}
