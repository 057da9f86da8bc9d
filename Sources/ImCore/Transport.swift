public import ServiceLifecycle

/// A source of client connections for a node: WebSocket today, others (SSE, raw TCP) later.
///
/// A transport authenticates each connection before accepting it, hands accepted
/// connections to the node's hub, and stops accepting when its `run()` is asked to shut down.
public protocol Transport: Service {
    /// A short name for logs and metrics, such as `websocket`.
    var name: String { get }
    /// The port the transport listens on, once bound (`nil` before).
    var boundPort: Int? { get }
}
