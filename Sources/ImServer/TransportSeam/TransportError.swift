/// Why the node could not take a connection a transport handed it.
public enum TransportError: Error, Sendable, CustomStringConvertible {
    /// The connection's event loop is not one of the node's (``NodeCore/open(_:on:output:)``
    /// needs a loop of the group the node was built on).
    case notANodeLoop
    /// The connection was gone before it could be handed over (its handler had left the
    /// pipeline).
    case connectionGone

    public var description: String {
        switch self {
        case .notANodeLoop: "the connection's event loop is not one of the node's event loops"
        case .connectionGone: "the connection was gone before it could be handed to the node"
        }
    }
}
