import ImCore
import ImTesting
import Synchronization

/// A `MemoryPresence` a test can take down and bring back, and that refuses every call once
/// its `run()` has returned (as a directory whose connection pool was closed would).
final class ControlledPresence: Presence {
    /// The directory's data, reachable by the test even while the presence is "down".
    var inner: MemoryPresence { data.withLock { $0 } }
    private let data = Mutex(MemoryPresence())
    private let down = Mutex<String?>(nil)
    private let stopped = Atomic<Bool>(false)
    private let reads = Atomic<Int>(0)
    private let failingDisconnects = Atomic<Bool>(false)
    private let connects = Atomic<Int>(0)
    private let replacements = Mutex(HeldReplacements())
    private let lookups = Mutex(HeldLookups())

    /// Lookups (`nodes(of:)`) a test holds back until it lets them all go.
    private struct HeldLookups {
        var holding = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        /// Told of each lookup that starts waiting.
        var arrivals: AsyncQueue<Void>?
    }

    /// Replacements a test holds back: each waits for a permit while holding.
    private struct HeldReplacements {
        var holding = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        var finished = 0
    }

    /// How many `connect` calls came in.
    var connectCalls: Int { connects.load(ordering: .acquiring) }

    /// How many `replaceConnections` calls wait for ``releaseOneReplacement()``.
    var replacementsWaiting: Int { replacements.withLock { $0.waiting.count } }

    /// How many `replaceConnections` calls returned.
    var replacementsFinished: Int { replacements.withLock { $0.finished } }

    /// Makes every `replaceConnections` wait, before it runs, until ``releaseOneReplacement()``
    /// lets it go; `false` lets every waiting one go and stops holding.
    func holdReplacements(_ hold: Bool) {
        let released = replacements.withLock { state in
            state.holding = hold
            guard !hold else { return [CheckedContinuation<Void, Never>]() }
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in released { continuation.resume() }
    }

    /// Lets the longest-waiting held replacement run.
    func releaseOneReplacement() {
        let next = replacements.withLock { state in state.waiting.isEmpty ? nil : state.waiting.removeFirst() }
        next?.resume()
    }

    /// Makes every `nodes(of:)` lookup wait until ``releaseLookups()``; returns a queue told of
    /// each lookup as it starts waiting.
    func holdLookups() -> AsyncQueue<Void> {
        let arrivals = AsyncQueue<Void>()
        lookups.withLock { state in
            state.holding = true
            state.arrivals = arrivals
        }
        return arrivals
    }

    /// Lets every held lookup go, and stops holding.
    func releaseLookups() {
        let released = lookups.withLock { state in
            state.holding = false
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in released { continuation.resume() }
    }

    /// Makes every `disconnect` throw (or stop throwing) while health stays up: a blip, or a
    /// timeout whose command never ran.
    func failDisconnects(_ fail: Bool) { failingDisconnects.store(fail, ordering: .releasing) }

    /// How often ``health`` was read: a test waits for the node's watcher to look.
    var healthReads: Int { reads.load(ordering: .acquiring) }

    /// Makes `health` `.down(reason)` and every call throw `BackplaneError.unavailable`.
    func goDown(_ reason: String) { down.withLock { $0 = reason } }

    /// Ends an outage begun by ``goDown(_:)``.
    func comeBack() { down.withLock { $0 = nil } }

    /// Forgets everything (a backend restarted without persistence): connections, leases,
    /// memberships and token claims.
    func loseData() { data.withLock { $0 = MemoryPresence() } }

    var health: BackplaneHealth {
        reads.add(1, ordering: .releasing)
        return down.withLock { $0 }.map(BackplaneHealth.down) ?? .up
    }

    func run() async throws {
        try await inner.run()
        stopped.store(true, ordering: .releasing)
    }

    /// Throws unless the directory is up and running (or not yet run).
    private func check() throws {
        if stopped.load(ordering: .acquiring) { throw BackplaneError.closed }
        if let reason = down.withLock({ $0 }) { throw BackplaneError.unavailable(reason) }
    }

    func connect(_ connection: ConnectionRecord) async throws -> Int? {
        connects.add(1, ordering: .releasing)
        try check()
        return try await inner.connect(connection)
    }

    func disconnect(_ connection: ConnectionRecord) async throws -> Int? {
        try check()
        if failingDisconnects.load(ordering: .acquiring) { throw BackplaneError.unavailable("test: disconnect failed") }
        return try await inner.disconnect(connection)
    }

    func nodes(of users: [ClientID]) async throws -> [ClientID: Set<NodeID>] {
        await withCheckedContinuation { continuation in
            let arrivals = lookups.withLock { state -> AsyncQueue<Void>? in
                guard state.holding else { return nil }
                state.waiting.append(continuation)
                return state.arrivals
            }
            if let arrivals { arrivals.push(()) } else { continuation.resume() }
        }
        try check()
        return try await inner.nodes(of: users)
    }

    func onlineUsers(after: ClientID?, limit: Int) async throws -> [ClientID] {
        try check()
        return try await inner.onlineUsers(after: after, limit: limit)
    }

    func renewLease(of node: NodeID, ttl: Duration) async throws -> Bool {
        try check()
        return try await inner.renewLease(of: node, ttl: ttl)
    }

    func replaceConnections(of node: NodeID, with live: [ConnectionRecord]) async throws -> PresenceChanges {
        await withCheckedContinuation { continuation in
            let held = replacements.withLock { state in
                if state.holding { state.waiting.append(continuation) }
                return state.holding
            }
            if !held { continuation.resume() }
        }
        defer { replacements.withLock { $0.finished += 1 } }
        try check()
        return try await inner.replaceConnections(of: node, with: live)
    }

    func reapExpiredNodes() async throws -> [ConnectionRecord] {
        try check()
        return try await inner.reapExpiredNodes()
    }

    func removeNode(_ node: NodeID) async throws -> [ConnectionRecord] {
        try check()
        return try await inner.removeNode(node)
    }

    func join(_ user: ClientID, channels: [String]) async throws {
        try check()
        try await inner.join(user, channels: channels)
    }

    func leave(_ user: ClientID, channels: [String]) async throws {
        try check()
        try await inner.leave(user, channels: channels)
    }

    func remove(_ users: [ClientID], from channel: String) async throws {
        try check()
        try await inner.remove(users, from: channel)
    }

    func clear(_ channel: String) async throws -> [ClientID] {
        try check()
        return try await inner.clear(channel)
    }

    func channels(of user: ClientID) async throws -> [String] {
        try check()
        return try await inner.channels(of: user)
    }

    func members(of channel: String, after: ClientID?, limit: Int) async throws -> [ClientID] {
        try check()
        return try await inner.members(of: channel, after: after, limit: limit)
    }

    func channelNames(after: String?, limit: Int) async throws -> [String] {
        try check()
        return try await inner.channelNames(after: after, limit: limit)
    }

    func stats(of channel: String) async throws -> ChannelStats {
        try check()
        return try await inner.stats(of: channel)
    }

    func claimToken(id: String, ttl: Duration) async throws -> Bool {
        try check()
        return try await inner.claimToken(id: id, ttl: ttl)
    }
}
