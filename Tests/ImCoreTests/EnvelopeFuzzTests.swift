import ImCore
import ImTesting
import NIOCore
import Testing

private func message(id: String, sender: ClientID, channel: String?, timestamp: Int64, data: String) -> Message {
    Message(id: id, sender: sender, channel: channel, timestamp: timestamp, data: ByteBuffer(string: data))
}

/// Valid envelopes of every kind, the seeds the mutations start from.
private let seeds: [Envelope] = {
    let long = String(repeating: "é", count: 100)
    let plain = message(
        id: "0b7e2d4c9a1f3e5d6c8b", sender: "alice", channel: nil, timestamp: 1_732_712_345_678,
        data: #"{"text":"hi","n":[1,2.5,null,true]}"#)
    let inRoom = message(id: "m", sender: "bob", channel: "room-1", timestamp: -1, data: "\"" + long + "\"")
    return [
        .delivery(
            Delivery(
                message: plain, receivers: ["bob", "carol", ClientID(rawValue: long)], receiptFor: ["bob"],
                senderNodes: ["node-1", "node-2"])),
        .delivery(Delivery(message: inRoom, receivers: ["x"])),
        .channel(inRoom),
        .broadcast(plain),
        .receipt(Receipt(messageID: "m-9", sender: "alice", receiver: "bob", status: .delivered)),
        .receipt(Receipt(messageID: "m-9", sender: "alice", receiver: "bob", status: .acked)),
        .command(
            .join("alice", channels: ["a", "b", long]), reply: ReplyAddress(subject: "_reply.h1", requestID: "r-1")),
        .command(.leave("bob", channels: []), reply: nil),
        .command(.forceOffline("carol"), reply: ReplyAddress(subject: "s", requestID: "r-2")),
        .reply(requestID: "r-3"),
        .event(PresenceEvent(kind: .online, client: "alice", node: "n1", meta: #"{"role":"admin"}"#, timestamp: 42)),
        .event(PresenceEvent(kind: .offline, client: "alice", node: "n1", meta: nil, timestamp: .min)),
        .batch([]),
        .batch([
            .delivery(Delivery(message: plain, receivers: ["bob"], receiptFor: ["bob"])),
            .receipt(Receipt(messageID: "m-1", sender: "alice", receiver: "bob", status: .offline)),
            .channel(inRoom),
            .event(PresenceEvent(kind: .online, client: "z", node: "n2", meta: nil, timestamp: 7)),
        ]),
    ]
}()

/// A batch nested `depth` levels deep (the format forbids nesting; the decoder must say so).
private func nestedBatch(depth: Int) -> ByteBuffer {
    // Each level is version, kind 10 (batch), count 1, the item's length (UInt32), the item;
    // the innermost item is an empty batch (3 bytes). Written outside in, in one pass.
    let innermost = Envelope.batch([]).encoded()
    var buffer = ByteBuffer()
    buffer.reserveCapacity(depth * 7 + innermost.readableBytes)
    for level in stride(from: depth, to: 0, by: -1) {
        buffer.writeInteger(Envelope.formatVersion)
        buffer.writeInteger(UInt8(10))
        buffer.writeInteger(UInt8(1))
        buffer.writeInteger(UInt32((level - 1) * 7 + innermost.readableBytes))
    }
    buffer.writeImmutableBuffer(innermost)
    return buffer
}

@Suite("Fuzzing the envelope decoder")
struct EnvelopeFuzzTests {
    /// The property: decoding never traps; it throws a typed error, or returns an envelope
    /// that encodes to bytes that decode to the same envelope.
    private static func check(_ bytes: [UInt8], index: Int) {
        let envelope: Envelope
        do {
            envelope = try Envelope(decoding: ByteBuffer(bytes: bytes))
        } catch {
            return  // typed: EnvelopeDecodingError
        }
        let again = Result { () throws(EnvelopeDecodingError) -> Envelope in try Envelope(decoding: envelope.encoded())
        }
        #expect(
            again == .success(envelope), "case \(index): \(bytes) decoded to \(envelope), which does not round-trip")
    }

    @Test("mutated encodings of valid envelopes: an error or an envelope that re-encodes, never a trap")
    func mutatedEnvelopes() {
        let encodings = seeds.map { Array($0.encoded().readableBytesView) }
        var decoded = 0
        let count = FuzzBudget(seed: 0xE1_0001, iterations: 20_000).run { index, random in
            let bytes = Mutator.mutate(encodings.randomElement(using: &random)!, maxMutations: 3, using: &random)
            if (try? Envelope(decoding: ByteBuffer(bytes: bytes))) != nil { decoded += 1 }
            Self.check(bytes, index: index)
        }
        #expect(decoded > 0 && decoded < count, "mutations reach both outcomes (\(decoded) of \(count) decoded)")
    }

    @Test("random bytes behind a valid version and kind: an error or an envelope that re-encodes, never a trap")
    func randomBodies() {
        FuzzBudget(seed: 0xE1_0002, iterations: 20_000).run { index, random in
            let body = (0..<Int.random(in: 0...64, using: &random)).map { _ in
                Int.random(in: 0..<3, using: &random) == 0
                    ? UInt8.random(in: 0...3, using: &random) : UInt8.random(in: 0...255, using: &random)
            }
            Self.check([Envelope.formatVersion, UInt8.random(in: 0...11, using: &random)] + body, index: index)
        }
    }

    @Test("regression: a deeply nested batch is refused without recursing (stack overflow)")
    func deeplyNestedBatch() {
        for depth in [1, 2, 100, 2_000, 200_000] {
            let result = Result { () throws(EnvelopeDecodingError) -> Envelope in
                try Envelope(decoding: nestedBatch(depth: depth))
            }
            #expect(result == .failure(.invalidValue(field: "batch")), "depth \(depth)")
        }
    }
}
