public import ServiceLifecycle

/// Who is connected on which node, and who belongs to which channel: the shared directory.
///
/// Every node and every helper of a cluster use one `Presence`. Contract (checked by
/// `PresenceConformance` in `ImTesting`):
/// - Each method is atomic on its own: two nodes racing to connect the same user's first two
///   connections see counts 1 and 2, never 1 and 1.
/// - Connections are counted per user, so online/offline is per user, not per tab.
/// - Channel membership belongs to the user and outlives connections: closing a tab never
///   removes the user from a channel.
/// - Lists are paged by a cursor (`after`, exclusive) in ascending order; no call returns
///   everything in one reply.
/// - **Lifecycle.** ``run()`` (from `Service`) owns whatever the directory needs running (a
///   client to run, a connection to watch and re-open with backoff) and returns on graceful
///   shutdown or cancellation; a directory with nothing to run just waits for graceful shutdown.
///   ``health`` is `.down(reason)` while the backend is unreachable. Calls may come before
///   `run()` (a node's first calls at start can) and must then either work, wait a bounded
///   time, or throw ``BackplaneError``. After the backend comes back, calls work again without
///   anyone recreating the directory. ``Backplane`` runs it together with its bus.
/// - **Never crashes the caller.** Every failure is a thrown ``BackplaneError``.
public protocol Presence: Service {
    /// Whether the directory can reach its backend now.
    var health: BackplaneHealth { get }
    /// Registers a connection; returns the user's connection count after, or `nil` when that
    /// connection was registered already (so a node can re-register after a backplane restart
    /// without announcing users twice). A count of 1 means the user just came online.
    func connect(_ connection: ConnectionRecord) async throws -> Int?
    /// Removes a connection; returns the user's count after, or `nil` when it was not
    /// registered (already reaped, say). A count of 0 means the user just went offline.
    func disconnect(_ connection: ConnectionRecord) async throws -> Int?
    /// The nodes each of `users` is connected to, in one round trip; offline users are absent.
    func nodes(of users: [ClientID]) async throws -> [ClientID: Set<NodeID>]
    /// Online users in ascending order after `after`, at most `limit`.
    func onlineUsers(after: ClientID?, limit: Int) async throws -> [ClientID]
    /// Keeps `node` alive for `ttl` more (from now, even when that is sooner than before); a
    /// node whose lease runs out is reaped. Returns whether `node` held a lease that had not run
    /// out: `false` for a new node, and for one that was reaped, that outlived its lease (a
    /// paused process), or whose entries the backend lost. A node told `false` cannot trust
    /// that its connections are registered, and calls ``replaceConnections(of:with:)``.
    func renewLease(of node: NodeID, ttl: Duration) async throws -> Bool
    /// Makes `node`'s registered connections exactly `live` in one atomic step: registers those
    /// missing (as ``connect(_:)`` would) and removes the others (as ``disconnect(_:)`` would),
    /// adding before removing, so a user who keeps a connection never goes offline in between.
    /// Records in `live` for another node are ignored. Returns the users this came online or
    /// went offline (one record each), for the node to announce.
    func replaceConnections(of node: NodeID, with live: [ConnectionRecord]) async throws -> PresenceChanges
    /// Atomically removes every connection of every node whose lease expired, and returns one
    /// record for each user who had no connection left (the ones to announce offline).
    func reapExpiredNodes() async throws -> [ConnectionRecord]
    /// Removes every connection of `node` and its lease (a node restarting under the same id,
    /// or leaving); returns one record for each user who went offline.
    func removeNode(_ node: NodeID) async throws -> [ConnectionRecord]
    /// Adds `user` to `channels`.
    func join(_ user: ClientID, channels: [String]) async throws
    /// Removes `user` from `channels`.
    func leave(_ user: ClientID, channels: [String]) async throws
    /// Removes `users` from one channel.
    func remove(_ users: [ClientID], from channel: String) async throws
    /// Removes every member of `channel`; returns who was removed.
    func clear(_ channel: String) async throws -> [ClientID]
    /// The channels `user` belongs to, in ascending order.
    func channels(of user: ClientID) async throws -> [String]
    /// Members of `channel` in ascending order after `after`, at most `limit`.
    func members(of channel: String, after: ClientID?, limit: Int) async throws -> [ClientID]
    /// Channels with at least one member, in ascending order after `after`, at most `limit`.
    func channelNames(after: String?, limit: Int) async throws -> [String]
    /// How many members `channel` has, and how many of them are online.
    func stats(of channel: String) async throws -> ChannelStats
    /// Marks a connect token as used; `true` the first time for `id` within `ttl`, cluster-wide.
    /// Any `ttl` is taken without trapping: the built-in directories clamp it to
    /// `Duration.claimTTLRange` (a token never lives longer than that).
    func claimToken(id: String, ttl: Duration) async throws -> Bool
}

/// The users a change to the directory brought online or took offline.
public struct PresenceChanges: Sendable, Hashable {
    /// One record for each user who came online (their first connection was registered),
    /// ascending by user.
    public var online: [ConnectionRecord]
    /// One record for each user who went offline (their last connection was removed),
    /// ascending by user.
    public var offline: [ConnectionRecord]

    /// Changes bringing `online` online and taking `offline` offline.
    public init(online: [ConnectionRecord] = [], offline: [ConnectionRecord] = []) {
        self.online = online
        self.offline = offline
    }
}

/// Member and online counts of one channel.
public struct ChannelStats: Sendable, Hashable, Codable {
    /// How many users belong to the channel.
    public var members: Int
    /// How many of them have at least one connection.
    public var online: Int

    /// Counts for a channel.
    public init(members: Int, online: Int) {
        self.members = members
        self.online = online
    }
}

extension Duration {
    /// The range a token claim's (or a lease's) time to live is clamped to: zero to one day.
    public static let claimTTLRange: ClosedRange<Duration> = .zero ... .seconds(86_400)

    /// This duration limited to `range` (so any duration, however large, converts safely).
    public func clamped(to range: ClosedRange<Duration>) -> Duration {
        min(max(self, range.lowerBound), range.upperBound)
    }
}
