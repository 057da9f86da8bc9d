public import ServiceLifecycle

/// A bus and a presence directory that belong together, picked by one URL and run as one
/// `Service` with one ``health``.
///
/// A process runs the backplane, never its halves: ``run()`` runs the bus's and the presence's
/// `run()` side by side and returns once both have returned (on graceful shutdown); if one
/// throws, the other is cancelled and the error is rethrown.
///
/// **Why each half is a `Service`.** ``Presence`` is a `Service` with a `health`, exactly like
/// ``Bus``, rather than the backplane taking a list of extra services to run. A directory built
/// on a client that must itself be run (postgres-nio's `PostgresClient`, a NATS connection) runs
/// it in its own `run()`; the contract is the same for both halves (`run()` owns connections and
/// reconnects, `health` says whether they are up), so the conformance kit checks both the same
/// way. A half with nothing to run waits for graceful shutdown.
///
/// **Shutdown order.** The backplane must stop after everything that uses it: on graceful
/// shutdown a node closes its connections, removes itself from Presence and announces its users
/// offline on the bus, and none of that may find the backplane gone. A `ServiceGroup` shuts its
/// services down in reverse order of configuration, each after the later ones have returned, so
/// the backplane goes *first* in the group (`ImServer`'s `NodeServices.ordered` builds that list).
public struct Backplane: Service {
    /// Moves messages between processes.
    public var bus: any Bus
    /// Knows who is connected where and who belongs to which channel.
    public var presence: any Presence
    /// Finds users' nodes and publishes to them in one round trip, when the backend can
    /// (``NodeRouter``); `nil` for a lookup then a publish.
    public var router: (any NodeRouter)?

    /// Pairs a bus with a presence directory, and the router over both if there is one.
    public init(bus: any Bus, presence: any Presence, router: (any NodeRouter)? = nil) {
        self.bus = bus
        self.presence = presence
        self.router = router
    }

    /// A fresh in-process backplane (`memory://`).
    public static func memory() -> Backplane {
        Backplane(bus: MemoryBus(), presence: MemoryPresence())
    }

    /// `.up` when both halves are up; otherwise `.down`, naming each half that is down and why.
    public var health: BackplaneHealth {
        BackplaneHealth.combined(bus: bus.health, presence: presence.health)
    }

    /// Runs the bus and the presence until both return (graceful shutdown or cancellation).
    public func run() async throws {
        let bus = self.bus
        let presence = self.presence
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await bus.run() }
            group.addTask { try await presence.run() }
        }
    }
}

extension BackplaneHealth {
    /// The health of a whole backplane: `.up` when both halves are, otherwise `.down` with the
    /// reason of each half that is down (`bus: …; presence: …`).
    public static func combined(bus: BackplaneHealth, presence: BackplaneHealth) -> BackplaneHealth {
        var reasons: [String] = []
        if case .down(let reason) = bus { reasons.append("bus: \(reason)") }
        if case .down(let reason) = presence { reasons.append("presence: \(reason)") }
        return reasons.isEmpty ? .up : .down(reasons.joined(separator: "; "))
    }
}
