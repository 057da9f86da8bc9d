public import ServiceLifecycle

/// A source of client connections for a node: the WebSocket listener (``WebSocketTransport``),
/// a test's in-memory transport, Server-Sent Events.
///
/// A transport speaks its wire protocol and nothing else. It checks each request with the node's
/// ``Gatekeeper`` (token, single use, limits) and hands every admitted connection to the node
/// with ``NodeCore/open(_:on:output:)``, passing a ``ConnectionOutput`` through which the node
/// writes frames and closes; it reports what the client does (text frames, keepalives,
/// writability, the close) to the ``NodeConnection`` it got back. The node does the rest:
/// registration in Presence, `ready` before anything else, fan-out, receipts and acks, the
/// per-connection limits, heartbeats and idle timeouts. A transport is run by ``ImNode``
/// (see `ImNode.init`'s `transports`), which calls ``stopAccepting()`` when shutting down
/// before it closes the connections.
public protocol Transport: Service {
    /// A short name for logs and metrics, such as `websocket`.
    var name: String { get }
    /// Stops accepting new connections; those open stay open (the node closes them next).
    func stopAccepting() async
}
