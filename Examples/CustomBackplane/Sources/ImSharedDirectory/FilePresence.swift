#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Foundation
public import ImBackplane
import ServiceLifecycle

/// ``Presence`` in a JSON file of a ``SharedDirectory``: every operation takes an exclusive
/// `flock` on `presence.lock`, reads `presence.json`, changes it and writes it back (to a
/// temporary file renamed over it), so each operation is atomic across every process on the
/// machine. Leases and token claims use the wall clock, which the processes share.
///
/// Meant for a handful of nodes on one machine: an operation costs a read and a write of the
/// whole state.
public final class FilePresence: Presence {
    /// Where the state is.
    public let directory: SharedDirectory

    /// A directory of presence in `directory`.
    public init(directory: SharedDirectory) {
        self.directory = directory
    }

    /// Nothing to run: every operation opens what it needs. Returns on graceful shutdown.
    public func run() async throws {
        try? await gracefulShutdown()
    }

    public var health: BackplaneHealth {
        directory.exists ? .up : .down("shared directory \(directory.path) is missing")
    }

    /// Runs `change` on the state under the lock, saving it if `change` changed it.
    private func withState<T: Sendable>(_ change: @escaping @Sendable (inout PresenceState) -> T) async throws -> T {
        let directory = directory
        return try await SharedDirectory.io {
            guard directory.exists else {
                throw BackplaneError.unavailable("shared directory \(directory.path) is missing")
            }
            let lock = try OpenFile(directory.presenceLock, flags: O_RDWR | O_CREAT)
            return try lock.withExclusiveLock {
                let url = URL(fileURLWithPath: directory.presenceState)
                var state = PresenceState()
                if let data = try? Data(contentsOf: url) {
                    do {
                        state = try JSONDecoder().decode(PresenceState.self, from: data)
                    } catch {
                        throw BackplaneError.protocolViolation(
                            "\(directory.presenceState) is not presence state: \(error)")
                    }
                }
                let before = state
                let result = change(&state)
                if state != before {
                    try JSONEncoder().encode(state).write(to: url, options: .atomic)
                }
                return result
            }
        }
    }

    private static var now: Double { Date().timeIntervalSince1970 }

    public func connect(_ connection: ConnectionRecord) async throws -> Int? {
        try await withState { state in
            let key = connection.connection.rawValue
            guard state.connections[connection.client.rawValue]?[key] == nil else { return nil }
            state.connections[connection.client.rawValue, default: [:]][key] = connection
            return state.connections[connection.client.rawValue]?.count ?? 0
        }
    }

    public func disconnect(_ connection: ConnectionRecord) async throws -> Int? {
        try await withState { state in
            let user = connection.client.rawValue
            guard state.connections[user]?.removeValue(forKey: connection.connection.rawValue) != nil else {
                return nil
            }
            let count = state.connections[user]?.count ?? 0
            if count == 0 { state.connections[user] = nil }
            return count
        }
    }

    public func nodes(of users: [ClientID]) async throws -> [ClientID: Set<NodeID>] {
        try await withState { state in
            var result: [ClientID: Set<NodeID>] = [:]
            for user in users {
                guard let records = state.connections[user.rawValue], !records.isEmpty else { continue }
                result[user] = Set(records.values.map(\.node))
            }
            return result
        }
    }

    public func onlineUsers(after: ClientID?, limit: Int) async throws -> [ClientID] {
        try await withState { state in
            PresenceState.page(of: state.connections.keys, after: after?.rawValue, limit: limit).map(
                ClientID.init(rawValue:))
        }
    }

    public func renewLease(of node: NodeID, ttl: Duration) async throws -> Bool {
        let now = Self.now
        let expiry = now + ttl.clamped(to: Duration.claimTTLRange).seconds
        return try await withState { state in
            let wasLive = state.leases[node.rawValue].map { $0 > now } ?? false
            state.leases[node.rawValue] = expiry
            return wasLive
        }
    }

    public func replaceConnections(of node: NodeID, with live: [ConnectionRecord]) async throws -> PresenceChanges {
        try await withState { $0.replaceConnections(of: node, with: live) }
    }

    public func reapExpiredNodes() async throws -> [ConnectionRecord] {
        let now = Self.now
        return try await withState { state in
            let expired = state.leases.filter { $0.value <= now }.keys.sorted()
            return expired.flatMap { state.drop(node: $0) }
        }
    }

    public func removeNode(_ node: NodeID) async throws -> [ConnectionRecord] {
        try await withState { $0.drop(node: node.rawValue) }
    }

    public func join(_ user: ClientID, channels: [String]) async throws {
        try await withState { state in
            for channel in channels { state.add(user.rawValue, to: channel) }
        }
    }

    public func leave(_ user: ClientID, channels: [String]) async throws {
        try await withState { state in
            for channel in channels { state.remove(user.rawValue, from: channel) }
        }
    }

    public func remove(_ users: [ClientID], from channel: String) async throws {
        try await withState { state in
            for user in users { state.remove(user.rawValue, from: channel) }
        }
    }

    public func clear(_ channel: String) async throws -> [ClientID] {
        try await withState { state in
            let removed = (state.members[channel] ?? []).sorted()
            for user in removed { state.remove(user, from: channel) }
            return removed.map(ClientID.init(rawValue:))
        }
    }

    public func channels(of user: ClientID) async throws -> [String] {
        try await withState { ($0.channelsOf[user.rawValue] ?? []).sorted() }
    }

    public func members(of channel: String, after: ClientID?, limit: Int) async throws -> [ClientID] {
        try await withState { state in
            PresenceState.page(of: state.members[channel] ?? [], after: after?.rawValue, limit: limit)
                .map(ClientID.init(rawValue:))
        }
    }

    public func channelNames(after: String?, limit: Int) async throws -> [String] {
        try await withState { PresenceState.page(of: $0.members.keys, after: after, limit: limit) }
    }

    public func stats(of channel: String) async throws -> ChannelStats {
        try await withState { state in
            let members = state.members[channel] ?? []
            return ChannelStats(members: members.count, online: members.filter { state.connections[$0] != nil }.count)
        }
    }

    public func claimToken(id: String, ttl: Duration) async throws -> Bool {
        let now = Self.now
        let expiry = now + ttl.clamped(to: Duration.claimTTLRange).seconds
        return try await withState { state in
            if let existing = state.tokens[id], existing > now { return false }
            state.tokens = state.tokens.filter { $0.value > now }
            state.tokens[id] = expiry
            return true
        }
    }
}

extension Duration {
    /// The duration in seconds.
    fileprivate var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
