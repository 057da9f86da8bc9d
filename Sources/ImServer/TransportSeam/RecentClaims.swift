import Synchronization

/// The connect tokens this node admitted, until they expire: a second line behind
/// ``Presence/claimToken(id:ttl:)``, so a token cannot be used twice on this node even after
/// the backend lost its claims (a restart without persistence).
///
/// Bounded: it remembers at most ``capacity`` tokens; beyond that the oldest are forgotten
/// first (the backend's claim still holds for them while it keeps its data). A token is kept
/// as a 64-bit hash of its id under this process's random seed (about 40 bytes each, not the
/// id's string): two ids sharing a hash are 2⁻⁶⁴-unlikely, and would only refuse a handshake.
final class RecentClaims: Sendable {
    private struct State {
        var expiries: [Int: ContinuousClock.Instant] = [:]
        var order: [(id: Int, expires: ContinuousClock.Instant)] = []
        var head = 0
    }

    /// The most tokens remembered.
    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
    }

    /// Remembers `id` until `expires`; `false` when it is remembered already (a replay).
    func claim(_ token: String, until expires: ContinuousClock.Instant) -> Bool {
        let id = token.hashValue
        let now = ContinuousClock.now
        return state.withLock { state in
            while state.head < state.order.count,
                state.order[state.head].expires <= now || state.order.count - state.head >= capacity
            {
                let oldest = state.order[state.head]
                if state.expiries[oldest.id] == oldest.expires { state.expiries[oldest.id] = nil }
                state.head += 1
            }
            if state.head > 1024, state.head * 2 > state.order.count {
                state.order.removeFirst(state.head)
                state.head = 0
            }
            if let known = state.expiries[id], known > now { return false }
            state.expiries[id] = expires
            state.order.append((id, expires))
            return true
        }
    }

    /// Forgets `id` (its handshake was refused after all).
    func forget(_ token: String) {
        state.withLock { _ = $0.expiries.removeValue(forKey: token.hashValue) }
    }

    /// How many tokens are remembered (for tests).
    var count: Int { state.withLock { $0.expiries.count } }
}
