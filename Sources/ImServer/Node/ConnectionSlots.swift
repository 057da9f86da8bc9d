import ImCore
import Synchronization

/// The node's connection limits as places that are taken: a handshake reserves its place
/// before anything asynchronous happens (a token check, a backplane round trip), and gives it
/// back when it is refused or its connection closes. Simultaneous handshakes therefore cannot
/// overshoot ``Limits/connectionsPerNode`` or ``Limits/connectionsPerUser``: a check followed
/// by an await would let every handshake in flight through.
final class ConnectionSlots: Sendable {
    private struct State {
        var total = 0
        var perUser: [ClientID: Int] = [:]

        mutating func release(_ user: ClientID) {
            let left = perUser[user, default: 1] - 1
            perUser[user] = left > 0 ? left : nil
        }
    }

    /// The most connections (admitted or being admitted) on the node.
    let perNode: Int
    /// The most connections one user may have on the node.
    let perUser: Int
    private let state = Mutex(State())

    /// Slots for at most `perNode` connections, `perUser` of them for any one user.
    init(perNode: Int, perUser: Int) {
        self.perNode = perNode
        self.perUser = perUser
    }

    /// Takes a place on the node; `false` when the node is full.
    func reserveNode() -> Bool {
        state.withLock { state in
            guard state.total < perNode else { return false }
            state.total += 1
            return true
        }
    }

    /// Gives back a place taken with ``reserveNode()``.
    func releaseNode() {
        state.withLock { $0.total -= 1 }
    }

    /// Takes one of `user`'s places; `false` when the user has ``perUser`` already.
    func reserve(_ user: ClientID) -> Bool {
        state.withLock { state in
            let taken = state.perUser[user, default: 0]
            guard taken < perUser else { return false }
            state.perUser[user] = taken + 1
            return true
        }
    }

    /// Gives back a place taken with ``reserve(_:)``.
    func release(_ user: ClientID) {
        state.withLock { $0.release(user) }
    }

    /// Gives back both places of a connection (``reserveNode()`` and ``reserve(_:)``), in one step.
    func releaseConnection(of user: ClientID) {
        state.withLock { state in
            state.total -= 1
            state.release(user)
        }
    }

    /// Places taken on the node, and by how many users (for tests and health).
    var taken: (connections: Int, users: Int) {
        state.withLock { ($0.total, $0.perUser.count) }
    }
}
