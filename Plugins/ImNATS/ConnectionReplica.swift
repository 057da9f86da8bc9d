import CNATS
import Foundation
import ImBackplane
import NIOCore
import NIOPosix
import Synchronization

/// A copy of the connections bucket in this process, kept current by nats.c's KV watcher on a
/// thread of its own, so ``NATSPresence/nodes(of:)`` answers a send's lookups from memory.
///
/// **Why.** A JetStream direct get costs nats-server about 16 µs of CPU (measured: 3.5 s for
/// 218,000 gets), so a lookup per receiver cannot carry 100,000 messages a second on 2 cores.
/// The copy costs the server one delivery per change instead, and a lookup costs nothing.
///
/// **Never stale.** Before answering from the copy, `nodes(of:)` asks the stream for its last
/// sequence (one small request per batch) and waits until the copy has applied it, so an
/// answer reflects every write acknowledged before the call, exactly as a direct read would.
/// While the copy is loading, rebuilding after a reconnect, or does not catch up within
/// ``catchUpLimit``, lookups fall back to direct gets.
final class ConnectionReplica: Sendable {
    private struct State {
        var users: [String: [StoredConnection]] = [:]
        /// The highest stream sequence applied.
        var applied: UInt64 = 0
        /// Whether the watcher delivered every value that existed when it started.
        var loaded = false
        /// Bumped to make the thread start over (after a reconnect: the bucket may be new).
        var generation = 0
        var started = false
        var stopped = false
        var waiters: [Waiter] = []
    }

    /// A caller waiting for the copy to reach `target`.
    private final class Waiter: Sendable {
        let target: UInt64
        let continuation: Mutex<CheckedContinuation<Bool, Never>?>

        init(target: UInt64, continuation: CheckedContinuation<Bool, Never>) {
            self.target = target
            self.continuation = Mutex(continuation)
        }

        func resume(_ caughtUp: Bool) {
            continuation.withLock { $0.take() }?.resume(returning: caughtUp)
        }
    }

    /// How long a lookup waits for the copy to catch up before it reads directly.
    static let catchUpLimit = TimeAmount.milliseconds(200)

    private let state = Mutex(State())
    /// Lookups answered from the copy (the rest were read directly).
    let answered = Atomic<Int>(0)
    private let client: NATSClient
    private let bucket: String

    init(client: NATSClient, bucket: String) {
        self.client = client
        self.bucket = bucket
    }

    /// Starts the watcher thread (once).
    func start() {
        let start = state.withLock { state -> Bool in
            guard !state.started, !state.stopped else { return false }
            state.started = true
            return true
        }
        guard start else { return }
        let thread = Thread { [self] in watchUntilStopped() }
        thread.name = "im-nats-replica"
        thread.start()
    }

    /// Makes the thread drop the copy and load it again (the connection came back).
    func reload() {
        let waiters = state.withLock { state in
            state.generation += 1
            state.loaded = false
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(false) }
    }

    /// Stops the thread (within its poll interval).
    func stop() {
        let waiters = state.withLock { state in
            state.stopped = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(false) }
    }

    var isLoaded: Bool { state.withLock { $0.loaded } }

    /// Waits until the copy applied `target` (true), or gives up after ``catchUpLimit`` or when
    /// the copy is reloaded (false).
    func catchUp(to target: UInt64) async -> Bool {
        await withCheckedContinuation { continuation in
            let waiter = Waiter(target: target, continuation: continuation)
            let done = state.withLock { state -> Bool? in
                guard state.loaded, !state.stopped else { return false }
                if state.applied >= target { return true }
                state.waiters.append(waiter)
                return nil
            }
            if let done {
                waiter.resume(done)
                return
            }
            MultiThreadedEventLoopGroup.singleton.next().scheduleTask(in: Self.catchUpLimit) {
                self.state.withLock { $0.waiters.removeAll { $0 === waiter } }
                waiter.resume(false)
            }
        }
    }

    /// The nodes each of `users` is connected to, from the copy.
    func nodes(of users: [ClientID]) -> [ClientID: Set<NodeID>] {
        answered.add(1, ordering: .relaxed)
        return state.withLock { state in
            var located: [ClientID: Set<NodeID>] = [:]
            for user in users {
                guard let list = state.users[Keys.user(user)], !list.isEmpty else { continue }
                located[user] = Set(list.map { NodeID(rawValue: $0.node) })
            }
            return located
        }
    }

    // MARK: The watcher thread

    private func watchUntilStopped() {
        while true {
            let (generation, stopped) = state.withLock { ($0.generation, $0.stopped) }
            if stopped || client.isClosed { return }
            do throws(BackplaneError) {
                try watch(generation: generation)
            } catch {
                state.withLock { $0.loaded = false }
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
    }

    /// Watches the bucket until the generation changes or the replica stops.
    private func watch(generation: Int) throws(BackplaneError) {
        guard client.health.isUp else { throw BackplaneError.unavailable("nats: not connected") }
        try client.withWatcher(bucket: bucket, keys: ">", ignoreDeletes: false, keysOnly: false) {
            watcher throws(BackplaneError) in
            state.withLock { state in
                state.users = [:]
                state.applied = 0
                state.loaded = false
            }
            while true {
                let current = state.withLock { $0.stopped || $0.generation != generation }
                if current { return }
                var entry: OpaquePointer?
                let status = kvWatcher_Next(&entry, watcher, 250)
                if status == NATS_TIMEOUT { continue }
                try NATSClient.check(status, "watching \(bucket)")
                guard let entry else {
                    state.withLock { $0.loaded = true }
                    continue
                }
                defer { kvEntry_Destroy(entry) }
                apply(entry)
            }
        }
    }

    /// Applies one change and wakes the callers it satisfies.
    private func apply(_ entry: OpaquePointer) {
        guard let cKey = kvEntry_Key(entry) else { return }
        let key = String(cString: cKey)
        let revision = kvEntry_Revision(entry)
        var list: [StoredConnection]?
        if key.hasPrefix("u."), kvEntry_Operation(entry) == kvOp_Put {
            list = try? NATSPresence.decode(StoredConnection.self, NATSClient.value(of: entry))
        }
        let ready = state.withLock { state -> [Waiter] in
            if key.hasPrefix("u.") { state.users[key] = list }
            state.applied = max(state.applied, revision)
            guard state.loaded else { return [] }
            let applied = state.applied
            let ready = state.waiters.filter { $0.target <= applied }
            state.waiters.removeAll { $0.target <= applied }
            return ready
        }
        for waiter in ready { waiter.resume(true) }
    }
}
