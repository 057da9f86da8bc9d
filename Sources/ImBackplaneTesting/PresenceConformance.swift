public import ImBackplane

/// Checks that a `Presence` keeps the contract of `Presence`; a plugin's tests run every check.
///
/// Each check makes a fresh directory with `makePresence`, runs its `run()` in a child task for
/// the duration of the check (cancelled at the end; ``Check/callsBeforeRunWaitOrThrow`` calls the
/// directory first), waits until `health` is `.up`, and uses user ids, channel names,
/// node ids, connection ids and token ids under a random prefix, asserting only about those, so
/// checks can run in parallel against one shared real server that also holds other data. A check
/// removes what it created at the end (best effort). Nodes a check uses get a long lease, so a
/// concurrent `reapExpiredNodes()` never takes their connections. Every error a call throws must
/// be a `BackplaneError`: another type fails the check, naming the call and the type.
///
/// ```swift
/// @Test(arguments: PresenceConformance.Check.allCases)
/// func presence(_ check: PresenceConformance.Check) async throws {
///     try await PresenceConformance(makePresence: { try await MyPresence.connect(to: url) }).run(check)
/// }
/// ```
public struct PresenceConformance: Sendable {
    /// One contract clause.
    public enum Check: String, CaseIterable, Sendable {
        /// `connect` returns the user's connection count after (1, 2, 3, counted per user and
        /// across nodes), and `nil` for a record registered already.
        case connectCountsPerUser
        /// `disconnect` counts down to 0 (the user went offline) and returns `nil` for a record
        /// not registered; a user who went offline can come online again.
        case disconnectCountsDown
        /// `nodes(of:)` answers for many users in one call (duplicates allowed), with each online
        /// user's set of nodes; offline users are absent.
        case nodesOfManyUsers
        /// `onlineUsers(after:limit:)` pages with an exclusive cursor in ascending order: 25 users
        /// come back as pages of 10, 10 and 5, without duplicates or offline users.
        case onlineUsersPaging
        /// `join`/`leave` change a user's channels; `channels(of:)` is sorted; repeating a join or
        /// leaving a channel not joined changes nothing.
        case channelsJoinLeave
        /// `members(of:after:limit:)` pages 25 members as 10, 10 and 5 in ascending order.
        case membersPaging
        /// `channelNames(after:limit:)` pages in ascending order, and a channel whose last member
        /// left disappears from it.
        case channelNamesPaging
        /// `stats(of:)` counts members and the online ones among them, and follows changes.
        case statsMembersOnline
        /// `remove(_:from:)` removes those users from one channel only; unknown users are ignored.
        case removeUsersFromChannel
        /// `clear(_:)` returns every member once and removes them from that channel only.
        case clearChannel
        /// Channel membership outlives every connection of the user (and removal of their node).
        case membershipSurvivesDisconnect
        /// `reapExpiredNodes()` removes the connections of nodes whose lease ran out (and no others,
        /// and not before), returning one record per user who went offline.
        case reapExpiredNodes
        /// `renewLease(of:ttl:)` returns `false` for a node without a lease, `true` while its lease
        /// runs, and `false` again once it ran out or the node was removed.
        case renewLeaseTellsWhetherLive
        /// `replaceConnections(of:with:)` makes a node's connections exactly the live ones: adds
        /// the missing, removes the rest (not other nodes' connections of the same users), and
        /// returns the users it brought online and took offline; a second call changes nothing.
        case replaceConnectionsReconciles
        /// `removeNode(_:)` removes a node's connections and returns one record (as connected,
        /// meta included) per user who went offline.
        case removeNodeReturnsOffline
        /// `claimToken` returns `true` for the first claim of an id, then `false`.
        case claimTokenOnce
        /// A claimed token id can be claimed again once its ttl has passed, not before.
        case claimTokenExpires
        /// Concurrent `connect`s and `disconnect`s of one user from 20 tasks see the counts 1…20
        /// and 19…0 exactly once each; 20 concurrent connects of one record register it once.
        case concurrentConnectsAreAtomic
        /// User ids, channel names and token ids with `:`, `.`, spaces, `*`, quotes, `@` and
        /// non-ASCII characters round-trip unchanged.
        case unusualIdentifiers
        /// Before `run()`: `nodes(of:)`, `renewLease(of:ttl:)`, `connect` and `claimToken` each
        /// return or throw a `BackplaneError` within the timeout; once `run()` is up, `health`
        /// is `.up` and a connect/disconnect round trip works.
        case callsBeforeRunWaitOrThrow
        /// After the backend restarts (the plugin's `restartBackend`), within the reconnect
        /// timeout: calls work again on the same directory (connect, nodes, claimToken) and
        /// `health` is `.up`; meanwhile every failure is a `BackplaneError`. What the backend
        /// kept over the restart is not checked (that depends on its persistence). Not
        /// applicable (the check records why) when no `restartBackend` is given.
        case survivesBackendRestart
    }

    /// Makes the directory under test; called once per check.
    public let makePresence: @Sendable () async throws -> any Presence
    /// How long a check waits for something that takes time (a lease or token to expire), and
    /// how long a call before `run()` may take.
    public let timeout: Duration
    /// Restarts the backend (stop it and start it again on the same address), or cuts the
    /// directory's connections; `nil` when there is no backend to restart (in-process).
    public let restartBackend: (@Sendable () async throws -> Void)?
    /// How long the directory may take to serve: after `run()` started (connecting, migrating
    /// a schema, possibly behind other directories doing the same), and after `restartBackend`
    /// returned.
    public let reconnectTimeout: Duration

    /// Checks directories made by `makePresence`, waiting up to `timeout` for expirations; with
    /// `restartBackend`, also that the directory comes back within `reconnectTimeout` of a
    /// restart. Give ``Check/survivesBackendRestart`` a backend of its own.
    public init(
        timeout: Duration = .seconds(5), reconnectTimeout: Duration = .seconds(30),
        restartBackend: (@Sendable () async throws -> Void)? = nil,
        makePresence: @escaping @Sendable () async throws -> any Presence
    ) {
        self.timeout = timeout
        self.reconnectTimeout = reconnectTimeout
        self.restartBackend = restartBackend
        self.makePresence = makePresence
    }

    /// Runs one check on a fresh directory; throws ``ConformanceFailure`` describing what broke,
    /// or returns whether it passed or did not apply (and why).
    @discardableResult
    public func run(_ check: Check) async throws -> ConformanceOutcome {
        if check == .survivesBackendRestart && restartBackend == nil {
            return .notApplicable("no restartBackend was given: the directory has no backend to restart (in-process)")
        }
        let presence: any Presence
        do {
            presence = try await makePresence()
        } catch {
            throw ConformanceFailure(check: check.rawValue, message: "makePresence threw \(error)")
        }
        let harness = PresenceHarness(
            presence: presence, check: check.rawValue, timeout: timeout,
            reconnectTimeout: reconnectTimeout, restartBackend: restartBackend)
        let prelude: (() async throws -> Void)? =
            check == .callsBeforeRunWaitOrThrow ? { try await harness.callsBeforeRun() } : nil
        try await whileRunning(
            presence, harness: harness, beforeRun: prelude,
            body: {
                try await waitUntilUp(
                    { presence.health }, "the directory's", timeout: reconnectTimeout, harness: harness)
                try await harness.perform(check)
            },
            tearDown: { await harness.cleanUp() })
        return .passed
    }
}

extension PresenceHarness {
    /// Runs the body of `check`.
    func perform(_ check: PresenceConformance.Check) async throws {
        switch check {
        case .connectCountsPerUser: try await connectCountsPerUser()
        case .disconnectCountsDown: try await disconnectCountsDown()
        case .nodesOfManyUsers: try await nodesOfManyUsers()
        case .onlineUsersPaging: try await onlineUsersPaging()
        case .channelsJoinLeave: try await channelsJoinLeave()
        case .membersPaging: try await membersPaging()
        case .channelNamesPaging: try await channelNamesPaging()
        case .statsMembersOnline: try await statsMembersOnline()
        case .removeUsersFromChannel: try await removeUsersFromChannel()
        case .clearChannel: try await clearChannel()
        case .membershipSurvivesDisconnect: try await membershipSurvivesDisconnect()
        case .reapExpiredNodes: try await reapsExpiredNodes()
        case .renewLeaseTellsWhetherLive: try await renewLeaseTellsWhetherLive()
        case .replaceConnectionsReconciles: try await replaceConnectionsReconciles()
        case .removeNodeReturnsOffline: try await removeNodeReturnsOffline()
        case .claimTokenOnce: try await claimTokenOnce()
        case .claimTokenExpires: try await claimTokenExpires()
        case .concurrentConnectsAreAtomic: try await concurrentConnectsAreAtomic()
        case .unusualIdentifiers: try await unusualIdentifiers()
        case .callsBeforeRunWaitOrThrow: try await callsAfterRun()
        case .survivesBackendRestart: try await survivesBackendRestart()
        }
    }
}
