import NIOCore

/// A member against a Centrifuge peer (``CentrifugePeer``): Centrifuge's JSON protocol inside
/// the text frames of its WebSocket listener. The server's replies and pushes are one JSON
/// object and a newline each (``CentrifugeScanner``), several to a frame; a message's end ends
/// its last line too. The reply to the greeting's last command makes the member ready; a
/// publication's data is the benchmark's `{"seq":n,"t":ns}`, read as a NATS message's body is.
extension MemberHandler {
    /// Reads the lines of one data frame's payload (`endsMessage`: it is the last fragment of
    /// its message); the reply to command `readyID` makes the member ready. Bytes of a line not
    /// yet ended wait for the next frame, up to ``maxFrameSize``. Returns `false` when the bytes
    /// ended the connection (an error reply, or bytes that are not the protocol's).
    func receivedCentrifuge(
        _ payload: ByteBuffer, endsMessage: Bool, readyID: UInt32, context: ChannelHandlerContext
    ) -> Bool {
        var bytes = payload
        if var held = peerBytes {
            peerBytes = nil
            held.writeBuffer(&bytes)
            bytes = held
        }
        while bytes.readableBytes > 0 {
            let newline = bytes.withUnsafeReadableBytes { $0.firstIndex(ofByte: UInt8(ascii: "\n")) }
            guard let length = newline ?? (endsMessage ? bytes.readableBytes : nil) else { break }
            let failure = bytes.withUnsafeReadableBytes { raw in
                centrifugeLine(UnsafeRawBufferPointer(rebasing: raw[..<length]), readyID: readyID)
            }
            if let failure {
                protocolError(failure, context: context)
                return false
            }
            bytes.moveReaderIndex(forwardBy: min(length + 1, bytes.readableBytes))
        }
        guard bytes.readableBytes <= Self.maxFrameSize else {
            protocolError("Centrifuge reply over \(Self.maxFrameSize) bytes without a newline", context: context)
            return false
        }
        if bytes.readableBytes > 0 { peerBytes = bytes }
        return true
    }

    /// Acts on one line; returns why it ends the connection, if it does.
    private func centrifugeLine(_ line: UnsafeRawBufferPointer, readyID: UInt32) -> String? {
        switch CentrifugeScanner.line(line) {
        case .publication(let data)?:
            let now = MonotonicClock.now()
            guard let (seq, time) = FrameScanner.sequenceAndTime(in: UnsafeRawBufferPointer(rebasing: line[data]))
            else { return nil }
            recorder.record(latencyNanoseconds: now > time ? now - time : 0, at: now)
            tracker.record(seq)
        case .reply(_, failed: true)?:
            return "Centrifuge: \(String(decoding: line.prefix(160), as: UTF8.self))"
        case .reply(let id, failed: false)?:
            if id == readyID { becomeReady(at: MonotonicClock.now()) }
        case .other?:
            break
        case nil:
            // An empty line (spaces only) is no reply; anything else unreadable is an error.
            guard line.contains(where: { ![0x20, 0x09, 0x0D, 0x0A].contains($0) }) else { return nil }
            return "malformed Centrifuge reply: \(String(decoding: line.prefix(160), as: UTF8.self))"
        }
        return nil
    }

    /// What a member sends once upgraded: the connect command (id 1; no token, the peer takes
    /// anyone), then, if it subscribes, the subscribe command (id 2, method 1) to `channel`.
    /// Method 0 (connect) is left out, as the library's own encoder leaves it out.
    static func centrifugeGreeting(channel: String?) -> PeerGreeting {
        var greeting = ByteBuffer(string: #"{"id":1,"params":{}}"# + "\n")
        guard let channel else { return .centrifuge(greeting, readyID: 1) }
        greeting.writeString(#"{"id":2,"method":1,"params":{"channel":"# + CentrifugePeer.quoted(channel) + "}}\n")
        return .centrifuge(greeting, readyID: 2)
    }
}
