public import NIOCore

/// An optional part of a backplane whose bus and presence live in one server: it finds the
/// nodes holding some users and publishes to those nodes in one round trip, where a lookup
/// (``Presence/nodes(of:)``) then a publish (``Bus/publish(_:)``) take two.
///
/// A backplane without one (``Backplane/router`` `nil`) is used with the lookup and the publish;
/// a router changes latency, not what is delivered. Contract (checked by
/// `NodeRouterConformance` in `ImBackplaneTesting`):
/// - **Where.** Each message's payload is published once on the subject
///   `nodeSubjectPrefix + node` of every node that holds a connection of any of its users
///   (as ``Presence/nodes(of:)`` would answer at that moment), and on no other subject.
/// - **Answer.** The nodes of every user named, as ``Presence/nodes(of:)`` answers: users
///   with no connection are absent.
/// - **Order.** The messages of one call are published in the order given, and reach each
///   subscriber in that order (the ``Bus``'s order, as if published in one batch).
/// - **All or nothing where the backend allows.** A call that throws a ``BackplaneError`` may
///   have published some of its messages; callers report the failure, as for a failed publish.
public protocol NodeRouter: Sendable {
    /// Publishes each message to the nodes holding its users; returns where the users are.
    func publish(_ messages: [RoutedMessage], toNodesUnder nodeSubjectPrefix: String) async throws
        -> [ClientID: Set<NodeID>]
}

/// A payload for whichever nodes hold connections of some users.
public struct RoutedMessage: Sendable {
    /// The users whose nodes get the payload.
    public var users: [ClientID]
    /// The bytes published (an encoded `Envelope` for ImServer).
    public var payload: ByteBuffer

    /// A payload for the nodes of `users`.
    public init(users: [ClientID], payload: ByteBuffer) {
        self.users = users
        self.payload = payload
    }
}
