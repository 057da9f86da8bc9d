import NIOCore

/// Where a ``Pacer``'s messages go: a number of lanes, each carrying one message at a time.
protocol PacedSender: AnyObject, Sendable {
    /// Opens up to `lanes` lanes whose completions run on `loop`; returns how many opened.
    func open(lanes: Int, on loop: any EventLoop) async throws -> Int
    /// Sends the messages that are due, each over its lane; calls `completion` (on any thread)
    /// once per message with success once the server accepted it, or the reason it failed.
    /// Called on the pacer's loop.
    func send(_ due: [PacedMessage], completion: @escaping @Sendable (PacedMessage, Result<Void, any Error>) -> Void)
    /// Closes the lanes.
    func close() async
}

/// One message the pacer sends: its sequence number, its slot (its timestamp) and its lane.
struct PacedMessage: Sendable {
    var seq: Int
    var time: UInt64
    var lane: Int
}

/// What the benchmark sends: message `seq` and its body `{"seq":n,"t":ns}`.
enum SendPlan: Sendable {
    /// Every message to one channel, from `bench`.
    case channel(String)
    /// Message `n` from `s<i>` to `r<i>` with `i = n % pairs`.
    case pairs(Int)

    /// Writes the message body of `seq` sent at `time`.
    static func writeData(seq: Int, time: UInt64, into body: inout ByteBuffer) {
        body.writeStaticString(#"{"seq":"#)
        body.writeString(String(seq))
        body.writeStaticString(#","t":"#)
        body.writeString(String(time))
        body.writeStaticString("}")
    }
}
