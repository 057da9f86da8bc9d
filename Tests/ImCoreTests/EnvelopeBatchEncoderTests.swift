import ImCore
import NIOCore
import Testing

/// Envelopes encoded one at a time make the same bytes as a batch encoded whole.
@Suite("Envelope batch encoder")
struct EnvelopeBatchEncoderTests {
    @Test(
        "the bytes are a batch's, or the lone envelope's, and decode to what was added",
        arguments: [1, 2, 3, 127, 128, 129, 300, 16_384])
    func sameBytesAsABatch(count: Int) throws {
        let envelopes = (0..<count).map(Self.envelope)
        var encoder = EnvelopeBatchEncoder(capacity: 16)
        for envelope in envelopes { encoder.append(envelope) }
        #expect(encoder.count == count)
        let bytes = encoder.finish()
        let expected = count == 1 ? envelopes[0] : Envelope.batch(envelopes)
        #expect(bytes == expected.encoded())
        #expect(try Envelope(decoding: bytes) == expected)
        // Finished, the encoder is empty.
        #expect(encoder.count == 0)
    }

    @Test("a message given by its parts encodes as its channel or broadcast envelope does")
    func messageParts() throws {
        var byParts = EnvelopeBatchEncoder(capacity: 16)
        var byEnvelope = EnvelopeBatchEncoder(capacity: 16)
        var expected: [Envelope] = []
        for n in 0..<300 {
            let toEveryone = n % 2 == 0
            let message = Message(
                id: "m-\(n)", sender: ClientID(rawValue: "s-é\(n % 7)"),
                channel: toEveryone && n % 4 == 0 ? nil : "room-\(n % 5)",
                timestamp: Int64(n) * 1_000_003, data: ByteBuffer(string: String(repeating: "x", count: n)))
            byParts.appendMessage(
                toEveryone: toEveryone, id: message.id, sender: message.sender, channel: message.channel,
                timestamp: message.timestamp, data: message.data)
            let envelope = toEveryone ? Envelope.broadcast(message) : .channel(message)
            byEnvelope.append(envelope)
            expected.append(envelope)
        }
        let bytes = byParts.finish()
        #expect(bytes == byEnvelope.finish())
        #expect(try Envelope(decoding: bytes) == .batch(expected))
    }

    /// The `n`th of a mix of kinds, with non-ASCII text and empty data.
    private static func envelope(_ n: Int) -> Envelope {
        let message = Message(
            id: "m-\(n)", sender: ClientID(rawValue: "s-\(n % 7)"), channel: n % 2 == 0 ? "room-é" : nil,
            timestamp: Int64(n),
            data: ByteBuffer(string: n % 5 == 0 ? "" : #"{"n":\#(n)}"#))
        switch n % 4 {
        case 0: return .channel(message)
        case 1:
            return .delivery(
                Delivery(message: message, receivers: [ClientID(rawValue: "r-\(n)"), ClientID(rawValue: "r-\(n + 1)")]))
        case 2:
            return .receipt(Receipt(messageID: "m-\(n)", sender: "s", receiver: "r", status: .delivered))
        default: return .broadcast(message)
        }
    }
}
