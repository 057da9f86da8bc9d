public import NIOCore

/// The transport's side of one client connection: how the node writes to the client and
/// closes it. A transport implements it once per connection and passes it to
/// ``NodeCore/open(_:on:output:)``.
///
/// The node calls every member on the connection's event loop (the loop passed to `open`),
/// one call at a time, and stops calling once ``NodeConnection/closed()`` was reported.
public protocol ConnectionOutput: AnyObject {
    /// Queues `frame` for the client, unflushed. Frames leave in the order written; one
    /// ``ServerFrame`` is shared by every receiver, so encode from it without changing it
    /// (``ServerFrame/bytes`` is a WebSocket frame, ``ServerFrame/payload`` its JSON text).
    func write(_ frame: ServerFrame)
    /// Sends what ``write(_:)`` queued.
    func flush()
    /// Whether the transport takes writes now. While it does not, the node keeps the
    /// connection's frames in a bounded backlog (``Limits/maxQueuedBytes``) and closes a client
    /// that stays so longer than ``Limits/slowConsumerTimeout`` (4008); the transport tells it of
    /// changes with ``NodeConnection/writabilityChanged()``.
    var isWritable: Bool { get }
    /// Sends a keepalive the client answers, so the node hears from an idle client (a
    /// WebSocket ping). A transport whose clients cannot answer sends what keeps its
    /// connection open and reports the client's own requests with
    /// ``NodeConnection/noteActivity()``.
    func sendKeepalive()
    /// Starts closing: tells the client `code` and `reason` (after the frames already queued)
    /// and closes the connection once the client answers, or after `grace` at the latest.
    func close(code: CloseCode, reason: String, grace: Duration)
    /// Completes once the connection has closed; `nil` when it has already.
    var closeFuture: EventLoopFuture<Void>? { get }
}
