import NIOCore

/// A member against a NATS peer (``NATSPeer``): the NATS client protocol inside the WebSocket
/// frames of nats-server's WebSocket listener. Messages are `MSG <subject> <sid> <bytes>` lines
/// followed by the payload (the benchmark's `{"seq":n,"t":ns}`), possibly split across frames;
/// the server's `PING`s are answered; the first `PONG` (the answer to the greeting's `PING`,
/// sent after `SUB`) makes the member ready.
extension MemberHandler {
    private static let crlf = Array("\r\n".utf8)

    /// Parses the NATS protocol bytes of one frame; returns whether something was written.
    func receivedNATS(_ payload: ByteBuffer, context: ChannelHandlerContext) -> Bool {
        var bytes = payload
        if var held = peerBytes {
            peerBytes = nil
            held.writeBuffer(&bytes)
            bytes = held
        }
        var written = false
        while bytes.readableBytes > 0 {
            let lineEnd = bytes.withUnsafeReadableBytes { $0.end(of: Self.crlf, anchoredAt: 1) }
            guard let lineEnd else { break }
            let line = bytes.getSlice(at: bytes.readerIndex, length: lineEnd - 2) ?? ByteBuffer()
            if line.readableBytesView.starts(with: "MSG ".utf8) {
                // `MSG <subject> <sid> [reply-to] <#bytes>`
                let length = line.readableBytesView.split(separator: UInt8(ascii: " ")).last.flatMap {
                    Int(String(decoding: $0, as: UTF8.self))
                }
                guard let length, (0...Self.maxFrameSize).contains(length) else {
                    protocolError("malformed NATS MSG line", context: context)
                    return written
                }
                guard bytes.readableBytes >= lineEnd + length + 2 else { break }
                if let body = bytes.getSlice(at: bytes.readerIndex + lineEnd, length: length) {
                    let now = MonotonicClock.now()
                    body.withUnsafeReadableBytes { raw in
                        guard let (seq, time) = FrameScanner.sequenceAndTime(in: raw) else { return }
                        recorder.record(latencyNanoseconds: now > time ? now - time : 0, at: now)
                        tracker.record(seq)
                    }
                }
                bytes.moveReaderIndex(forwardBy: lineEnd + length + 2)
                continue
            }
            bytes.moveReaderIndex(forwardBy: lineEnd)
            if line.readableBytesView.elementsEqual("PING".utf8) {
                reply(WireFrame.binary, ByteBuffer(string: "PONG\r\n"), context: context, masked: true)
                written = true
            } else if line.readableBytesView.elementsEqual("PONG".utf8) {
                becomeReady(at: MonotonicClock.now())
            } else if line.readableBytesView.starts(with: "-ERR".utf8) {
                protocolError("NATS: \(String(buffer: line))", context: context)
                return written
            }
        }
        // What waits is at most a line and a message's body: more means a peer that never ends
        // its line, and the member would hold it all.
        guard bytes.readableBytes <= 2 * Self.maxFrameSize else {
            protocolError(
                "NATS: over \(2 * Self.maxFrameSize) bytes without a complete line or message", context: context)
            return written
        }
        if bytes.readableBytes > 0 { peerBytes = bytes }
        return written
    }

    /// What a member sends once upgraded: `CONNECT`, then `SUB subject 1` if it subscribes,
    /// then `PING` (the `PONG` says the subscription is in place).
    static func natsGreeting(subject: String?) -> PeerGreeting {
        var greeting = ByteBuffer(string: #"CONNECT {"verbose":false,"pedantic":false,"protocol":1}"# + "\r\n")
        if let subject { greeting.writeString("SUB \(subject) 1\r\n") }
        greeting.writeString("PING\r\n")
        return .nats(greeting)
    }
}
