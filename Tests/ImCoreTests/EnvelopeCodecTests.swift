import ImCore
import NIOCore
import ImTesting
import Testing

/// Decodes `bytes` into an envelope, returning the typed error if any.
private func decodeResult(_ bytes: ByteBuffer) -> Result<Envelope, EnvelopeDecodingError> {
    do {
        return .success(try Envelope(decoding: bytes))
    } catch {
        return .failure(error)
    }
}

private func roundTrip(_ envelope: Envelope) throws -> Envelope {
    try Envelope(decoding: envelope.encoded())
}

private func message(
    id: String = "m-1", sender: ClientID = "alice", channel: String? = nil,
    timestamp: Int64 = 1_700_000_000_123, data: String = #"{"text":"hi"}"#
) -> Message {
    Message(id: id, sender: sender, channel: channel, timestamp: timestamp, data: ByteBuffer(string: data))
}

/// One envelope of every shape, for the truncation and mutation tests.
private let samples: [Envelope] = [
    .delivery(
        Delivery(message: message(), receivers: ["bob", "carol"], receiptFor: ["bob"], senderNodes: ["n1", "n2"])),
    .delivery(Delivery(message: message(channel: "room"), receivers: ["x"])),
    .channel(message(channel: "room-1")),
    .broadcast(message()),
    .broadcast(message(channel: "ignored-but-kept")),
    .receipt(Receipt(messageID: "m-9", sender: "alice", receiver: "bob", status: .acked)),
    .command(.join("alice", channels: ["a", "b"]), reply: ReplyAddress(subject: "_reply.h1", requestID: "r-1")),
    .command(.join("alice", channels: []), reply: nil),
    .command(.leave("bob", channels: ["a"]), reply: ReplyAddress(subject: "s", requestID: "r")),
    .command(.forceOffline("carol"), reply: ReplyAddress(subject: "s", requestID: "r-2")),
    .command(.forceOffline("carol"), reply: nil),
    .reply(requestID: "r-3"),
    .event(PresenceEvent(kind: .online, client: "alice", node: "n1", meta: #"{"role":"admin"}"#, timestamp: 42)),
    .event(PresenceEvent(kind: .offline, client: "alice", node: "n1", meta: nil, timestamp: -1)),
    .batch([]),
    .batch([
        .delivery(Delivery(message: message(), receivers: ["bob"])),
        .receipt(Receipt(messageID: "m-1", sender: "alice", receiver: "bob", status: .offline)),
        .channel(message(channel: "room")),
    ]),
]

@Suite("Envelope codec")
struct EnvelopeCodecTests {
    // MARK: - Round trips

    @Test("every sample envelope survives encode and decode")
    func samplesRoundTrip() throws {
        for sample in samples {
            #expect(try roundTrip(sample) == sample)
        }
    }

    @Test("a delivery keeps receivers, receiptFor, senderNodes, order and duplicates")
    func deliveryRoundTrip() throws {
        let delivery = Delivery(
            message: message(id: "id-ü", sender: "-42", channel: nil, timestamp: .max),
            receivers: ["b", "a", "b", "user@example.com"],
            receiptFor: ["a", "user@example.com"],
            senderNodes: ["node-2", "node-1"])
        let decoded = try roundTrip(.delivery(delivery))
        guard case .delivery(let out) = decoded else {
            Issue.record("decoded as \(decoded)")
            return
        }
        #expect(out.receivers == ["b", "a", "b", "user@example.com"])
        #expect(out.receiptFor == ["a", "user@example.com"])
        #expect(out.senderNodes == ["node-2", "node-1"])
        #expect(out.wantsReceipt)
        #expect(out.message.timestamp == .max)
        #expect(out.message.channel == nil)
        #expect(String(buffer: out.message.data) == #"{"text":"hi"}"#)
        #expect(out == delivery)
    }

    @Test("a batch keeps its envelopes in order; a batch inside a batch is refused")
    func batches() throws {
        let items = (0..<300).map { index in
            Envelope.delivery(Delivery(message: message(), receivers: [ClientID(rawValue: "user-\(index)")]))
        }
        #expect(try roundTrip(.batch(items)) == .batch(items))
        let nested = Envelope.batch([.batch([.reply(requestID: "r")])]).encoded()
        #expect(throws: EnvelopeDecodingError.invalidValue(field: "batch")) { try Envelope(decoding: nested) }
        // Every truncation of a batch is an error, never a crash or a shorter batch.
        let bytes = Envelope.batch(Array(items.prefix(3))).encoded()
        for length in 0..<bytes.readableBytes {
            #expect(throws: EnvelopeDecodingError.self) {
                try Envelope(decoding: bytes.getSlice(at: 0, length: length)!)
            }
        }
    }

    @Test("a delivery without receipts or sender nodes round-trips and does not want receipts")
    func deliveryWithoutReceipts() throws {
        let delivery = Delivery(message: message(), receivers: ["bob"])
        let decoded = try roundTrip(.delivery(delivery))
        #expect(decoded == .delivery(delivery))
        if case .delivery(let out) = decoded {
            #expect(!out.wantsReceipt)
            #expect(out.senderNodes.isEmpty)
        }
    }

    @Test("a delivery with 10,000 receivers round-trips")
    func manyReceivers() throws {
        let receivers = (0..<10_000).map { ClientID(rawValue: "user-\($0)") }
        let receiptFor = stride(from: 0, to: 10_000, by: 3).map { ClientID(rawValue: "user-\($0)") }
        let nodes = (0..<300).map { NodeID(rawValue: "node-\($0)") }
        let envelope = Envelope.delivery(
            Delivery(
                message: message(), receivers: receivers,
                receiptFor: receiptFor, senderNodes: nodes))
        let decoded = try roundTrip(envelope)
        #expect(decoded == envelope)
        if case .delivery(let out) = decoded {
            #expect(out.receivers.count == 10_000)
            #expect(out.receivers.last == "user-9999")
            #expect(out.receiptFor.count == receiptFor.count)
        }
    }

    @Test("1 MiB of data, and data with zero bytes, round-trip byte for byte")
    func largeAndBinaryData() throws {
        var generator = SeededGenerator(seed: 7)
        let big = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let zeros: [UInt8] = [0, 0, 1, 0, 0xFF, 0]
        for bytes in [big, zeros, [0], []] {
            let msg = Message(id: "m", sender: "s", channel: "c", timestamp: 0, data: ByteBuffer(bytes: bytes))
            for envelope in [
                Envelope.channel(msg), .broadcast(msg),
                .delivery(Delivery(message: msg, receivers: ["r"])),
            ] {
                let decoded = try roundTrip(envelope)
                #expect(decoded == envelope)
                let data: ByteBuffer? =
                    switch decoded {
                    case .channel(let m), .broadcast(let m): m.data
                    case .delivery(let d): d.message.data
                    default: nil
                    }
                #expect(data.map { Array($0.readableBytesView) } == bytes)
            }
        }
    }

    @Test(
        "unicode and empty strings in every text field round-trip",
        arguments: ["", "é", "中文", "🌍👨‍👩‍👧", "a\u{0}b", "\n\t\""])
    func unicodeAndEmptyText(_ text: String) throws {
        let all: [Envelope] = [
            .delivery(
                Delivery(
                    message: Message(
                        id: text, sender: ClientID(rawValue: text), channel: text,
                        timestamp: 1, data: ByteBuffer(string: text)),
                    receivers: [ClientID(rawValue: text)], receiptFor: [ClientID(rawValue: text)],
                    senderNodes: [NodeID(rawValue: text)])),
            .channel(
                Message(
                    id: text, sender: ClientID(rawValue: text), channel: text, timestamp: 1,
                    data: ByteBuffer(string: text))),
            .broadcast(Message(id: text, sender: ClientID(rawValue: text), timestamp: 1, data: ByteBuffer())),
            .receipt(
                Receipt(
                    messageID: text, sender: ClientID(rawValue: text), receiver: ClientID(rawValue: text),
                    status: .delivered)),
            .command(
                .join(ClientID(rawValue: text), channels: [text, text]),
                reply: ReplyAddress(subject: text, requestID: text)),
            .command(.leave(ClientID(rawValue: text), channels: [text]), reply: nil),
            .command(.forceOffline(ClientID(rawValue: text)), reply: ReplyAddress(subject: text, requestID: text)),
            .reply(requestID: text),
            .event(
                PresenceEvent(
                    kind: .online, client: ClientID(rawValue: text), node: NodeID(rawValue: text),
                    meta: text, timestamp: 0)),
        ]
        for envelope in all {
            #expect(try roundTrip(envelope) == envelope)
        }
    }

    @Test("an empty channel name is still a channel (present, not absent)")
    func emptyChannelIsPresent() throws {
        let envelope = Envelope.channel(message(channel: ""))
        #expect(try roundTrip(envelope) == envelope)
        let broadcast = Envelope.broadcast(message(channel: ""))
        guard case .broadcast(let out) = try roundTrip(broadcast) else {
            Issue.record("not a broadcast")
            return
        }
        #expect(out.channel == "")
    }

    @Test("receipts round-trip with every status", arguments: Receipt.Status.allCases)
    func receiptStatuses(_ status: Receipt.Status) throws {
        let receipt = Receipt(messageID: "m-\(status.rawValue)", sender: "alice", receiver: "bob", status: status)
        let decoded = try roundTrip(.receipt(receipt))
        #expect(decoded == .receipt(receipt))
        if case .receipt(let out) = decoded { #expect(out.status == status) }
    }

    @Test("commands round-trip with and without a reply address")
    func commands() throws {
        let reply = ReplyAddress(subject: "_INBOX.helper-1", requestID: "req-77")
        let commands: [NodeCommand] = [
            .join("alice", channels: ["room-1", "room-2", "room-1"]),
            .join("alice", channels: []),
            .leave("alice", channels: ["room-2"]),
            .leave("alice", channels: []),
            .forceOffline("alice"),
        ]
        for command in commands {
            for address in [reply, nil] {
                let envelope = Envelope.command(command, reply: address)
                let decoded = try roundTrip(envelope)
                #expect(decoded == envelope)
                if case .command(let outCommand, let outReply) = decoded {
                    #expect(outCommand == command)
                    #expect(outReply == address)
                }
            }
        }
        // Different commands with the same user do not decode as each other.
        #expect(
            try roundTrip(.command(.join("a", channels: ["x"]), reply: nil))
                != .command(.leave("a", channels: ["x"]), reply: nil))
    }

    @Test("replies round-trip")
    func replies() throws {
        for id in ["r", "", String(repeating: "x", count: 5000)] {
            #expect(try roundTrip(.reply(requestID: id)) == .reply(requestID: id))
        }
    }

    @Test("events round-trip for online and offline, with and without meta")
    func events() throws {
        for kind in [PresenceEvent.Kind.online, .offline] {
            for meta in [String?.none, "", #"{"plan":"pro","name":"Zoë"}"#] {
                for timestamp in [Int64.min, -1, 0, 1_700_000_000_000, .max] {
                    let event = PresenceEvent(
                        kind: kind, client: "alice", node: "node-a", meta: meta, timestamp: timestamp)
                    let decoded = try roundTrip(.event(event))
                    #expect(decoded == .event(event))
                    if case .event(let out) = decoded {
                        #expect(out.kind == kind)
                        #expect(out.meta == meta)
                        #expect(out.timestamp == timestamp)
                    }
                }
            }
        }
    }

    @Test("encode(into:) appends after existing bytes and encoded() matches it")
    func encodeIntoAppends() throws {
        let envelope = samples[0]
        var buffer = ByteBuffer(string: "prefix")
        envelope.encode(into: &buffer)
        buffer.moveReaderIndex(forwardBy: 6)
        #expect(buffer == envelope.encoded())
        #expect(try Envelope(decoding: buffer) == envelope)
    }

    @Test("the first byte is the format version")
    func firstByteIsVersion() {
        for sample in samples {
            #expect(
                sample.encoded().getInteger(at: sample.encoded().readerIndex, as: UInt8.self) == Envelope.formatVersion)
        }
    }

    // MARK: - Decoding errors

    @Test("an empty buffer is truncated")
    func emptyBuffer() {
        let result = decodeResult(ByteBuffer())
        guard case .failure(.truncated) = result else {
            Issue.record("expected truncated, got \(result)")
            return
        }
    }

    @Test("a wrong version is reported with the version found", arguments: [UInt8(0), 2, 3, 0x7F, 0xFF])
    func wrongVersion(_ version: UInt8) {
        var bytes = samples[3].encoded()
        bytes.setInteger(version, at: bytes.readerIndex)
        #expect(throws: EnvelopeDecodingError.unsupportedVersion(version)) { try Envelope(decoding: bytes) }
        // A lone wrong version byte gives the same answer.
        #expect(throws: EnvelopeDecodingError.unsupportedVersion(version)) {
            try Envelope(decoding: ByteBuffer(bytes: [version]))
        }
        #expect(EnvelopeDecodingError.unsupportedVersion(version).description.contains("\(version)"))
    }

    @Test("an unknown kind is reported with the kind found", arguments: [UInt8(0), 11, 12, 0x80, 0xFF])
    func unknownKind(_ kind: UInt8) {
        var bytes = samples[3].encoded()
        bytes.setInteger(kind, at: bytes.readerIndex + 1)
        #expect(throws: EnvelopeDecodingError.unknownKind(kind)) { try Envelope(decoding: bytes) }
        #expect(throws: EnvelopeDecodingError.unknownKind(kind)) {
            try Envelope(decoding: ByteBuffer(bytes: [Envelope.formatVersion, kind]))
        }
    }

    @Test("a version byte alone is truncated at the kind")
    func onlyVersion() {
        let result = decodeResult(ByteBuffer(bytes: [Envelope.formatVersion]))
        guard case .failure(.truncated) = result else {
            Issue.record("expected truncated, got \(result)")
            return
        }
    }

    @Test("every proper prefix of every sample fails to decode with a length or truncation error")
    func everyTruncationThrows() {
        var samplesWithBigData = samples
        samplesWithBigData.append(
            .channel(
                Message(
                    id: "big", sender: "s", channel: "c", timestamp: 5,
                    data: ByteBuffer(repeating: 0xAB, count: 300))))
        for sample in samplesWithBigData {
            let full = sample.encoded()
            let bytes = Array(full.readableBytesView)
            for length in 0..<bytes.count {
                let result = decodeResult(ByteBuffer(bytes: bytes[0..<length]))
                switch result {
                case .success(let envelope):
                    Issue.record("prefix of \(length)/\(bytes.count) bytes of \(sample) decoded as \(envelope)")
                case .failure(.truncated), .failure(.invalidLength):
                    break
                case .failure(let error):
                    Issue.record("prefix of \(length)/\(bytes.count) bytes of \(sample) failed with \(error)")
                }
            }
            // A slice of a bigger buffer (non-zero reader index) decodes the same.
            var padded = ByteBuffer(string: "xyz")
            padded.writeImmutableBuffer(full)
            padded.moveReaderIndex(forwardBy: 3)
            #expect(decodeResult(padded) == .success(sample))
        }
    }

    @Test("trailing bytes after a complete envelope are refused with their count", arguments: [1, 2, 100])
    func trailingBytes(_ extra: Int) {
        for sample in samples {
            var bytes = sample.encoded()
            bytes.writeRepeatingByte(0, count: extra)
            #expect(throws: EnvelopeDecodingError.trailingBytes(extra)) { try Envelope(decoding: bytes) }
        }
    }

    @Test("invalid UTF-8 in a text field is refused as invalidText")
    func invalidUTF8() {
        // A reply whose request id is the 2 bytes C3 28 (invalid continuation).
        let reply = ByteBuffer(bytes: [Envelope.formatVersion, 9, 2, 0xC3, 0x28])
        // Check the hand-made layout against the encoder first (with valid text of the same length).
        #expect(
            Array(Envelope.reply(requestID: "ab").encoded().readableBytesView)
                == [Envelope.formatVersion, 9, 2, UInt8(ascii: "a"), UInt8(ascii: "b")])
        let result = decodeResult(reply)
        guard case .failure(.invalidText) = result else {
            Issue.record("expected invalidText, got \(result)")
            return
        }

        // Corrupt each text byte of a receipt in turn: the decoder must call it invalid text.
        let receipt = Envelope.receipt(Receipt(messageID: "mmm", sender: "sss", receiver: "rrr", status: .offline))
        let good = Array(receipt.encoded().readableBytesView)
        for (index, byte) in good.enumerated()
        where byte == UInt8(ascii: "m") || byte == UInt8(ascii: "s")
            || byte == UInt8(ascii: "r")
        {
            var bad = good
            bad[index] = 0xFF
            let result = decodeResult(ByteBuffer(bytes: bad))
            guard case .failure(.invalidText) = result else {
                Issue.record("byte \(index): expected invalidText, got \(result)")
                continue
            }
        }

        // A lone surrogate encoded as UTF-8 (ED A0 80) and an overlong encoding (C0 AF) are not UTF-8 either.
        for invalid: [UInt8] in [[0xED, 0xA0, 0x80], [0xC0, 0xAF], [0x80], [0xF8, 0x88, 0x80, 0x80, 0x80]] {
            let bytes = [Envelope.formatVersion, 9, UInt8(invalid.count)] + invalid
            let result = decodeResult(ByteBuffer(bytes: bytes))
            guard case .failure(.invalidText) = result else {
                Issue.record("\(invalid): expected invalidText, got \(result)")
                continue
            }
        }
    }

    @Test("an over-long or oversized varint length is refused as invalidLength")
    func overLongVarint() {
        let cases: [[UInt8]] = [
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],  // more continuation bytes than any length needs
            [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
            [0x80, 0x80, 0x80, 0x80, 0x01],  // 2^28: larger than the 64 MiB limit
            [0x81, 0x80, 0x80, 0x20],  // 64 MiB + 1
        ]
        for varint in cases {
            let bytes = [Envelope.formatVersion, 9] + varint + [UInt8](repeating: 0x61, count: 8)
            let result = decodeResult(ByteBuffer(bytes: bytes))
            guard case .failure(.invalidLength) = result else {
                Issue.record("\(varint): expected invalidLength, got \(result)")
                continue
            }
        }
        // A length that fits the limit but exceeds the bytes left is truncated, not a crash.
        let short = [Envelope.formatVersion, 9, 0x80, 0x80, 0x80, 0x20, 0x61]  // exactly 64 MiB declared
        let result = decodeResult(ByteBuffer(bytes: short))
        guard case .failure(.truncated) = result else {
            Issue.record("expected truncated, got \(result)")
            return
        }
    }

    @Test("a list count larger than the bytes left is refused without allocating it")
    func hugeListCount() {
        // A join for user "u" whose channel list claims 2^26 entries.
        let bytes: [UInt8] = [Envelope.formatVersion, 5, 1, UInt8(ascii: "u"), 0x80, 0x80, 0x80, 0x20, 1, 0x61]
        let result = decodeResult(ByteBuffer(bytes: bytes))
        guard case .failure(.invalidLength) = result else {
            Issue.record("expected invalidLength, got \(result)")
            return
        }
    }

    @Test("a channel envelope without a channel is refused")
    func channelWithoutChannel() {
        // Encode as a broadcast (no channel), then relabel the kind byte as channel (2).
        var bytes = Envelope.broadcast(message(channel: nil)).encoded()
        #expect(bytes.getInteger(at: bytes.readerIndex + 1, as: UInt8.self) == 3)
        bytes.setInteger(UInt8(2), at: bytes.readerIndex + 1)
        let result = decodeResult(bytes)
        guard case .failure(.invalidValue) = result else {
            Issue.record("expected invalidValue, got \(result)")
            return
        }
        // The same bytes with a channel present do decode as a channel envelope.
        var good = Envelope.broadcast(message(channel: "room")).encoded()
        good.setInteger(UInt8(2), at: good.readerIndex + 1)
        #expect(decodeResult(good) == .success(.channel(message(channel: "room"))))
    }

    @Test("an undefined receipt status, event kind or option flag is refused as invalidValue")
    func invalidEnumValues() {
        // Receipt status is the last byte.
        for status: UInt8 in [0, 4, 0xFF] {
            var bytes = Envelope.receipt(Receipt(messageID: "m", sender: "a", receiver: "b", status: .acked)).encoded()
            bytes.setInteger(status, at: bytes.writerIndex - 1)
            let result = decodeResult(bytes)
            guard case .failure(.invalidValue) = result else {
                Issue.record("status \(status): expected invalidValue, got \(result)")
                continue
            }
        }
        // Event kind is the byte after the envelope kind.
        for kind: UInt8 in [0, 3, 0xFF] {
            var bytes = Envelope.event(PresenceEvent(kind: .online, client: "a", node: "n", meta: nil, timestamp: 0))
                .encoded()
            bytes.setInteger(kind, at: bytes.readerIndex + 2)
            let result = decodeResult(bytes)
            guard case .failure(.invalidValue) = result else {
                Issue.record("event kind \(kind): expected invalidValue, got \(result)")
                continue
            }
        }
        // The optional-field flag of a forceOffline's reply subject: only 0 or 1 are defined.
        for flag: UInt8 in [2, 0x80, 0xFF] {
            var bytes = Envelope.command(.forceOffline("u"), reply: nil).encoded()
            // version, kind, len=1, "u", subject flag, request flag
            #expect(bytes.readableBytes == 6)
            bytes.setInteger(flag, at: bytes.readerIndex + 4)
            let result = decodeResult(bytes)
            guard case .failure(.invalidValue) = result else {
                Issue.record("flag \(flag): expected invalidValue, got \(result)")
                continue
            }
        }
    }

    @Test("errors describe themselves")
    func errorDescriptions() {
        let errors: [EnvelopeDecodingError] = [
            .unsupportedVersion(9), .unknownKind(77), .truncated(field: "f1"), .invalidLength(field: "f2"),
            .invalidText(field: "f3"), .invalidValue(field: "f4"), .trailingBytes(5),
        ]
        let descriptions = errors.map(\.description)
        #expect(Set(descriptions).count == errors.count)
        #expect(descriptions[0].contains("9"))
        #expect(descriptions[1].contains("77"))
        #expect(descriptions[2].contains("f1"))
        #expect(descriptions[5].contains("f4"))
        #expect(descriptions[6].contains("5"))
    }

    // MARK: - Fuzzing

    @Test("20,000 random buffers never crash the decoder")
    func randomBytesFuzz() {
        var generator = SeededGenerator(seed: 0xC0DE_CAFE)
        for round in 0..<20_000 {
            // Mostly short buffers (where the interesting edges are), some long ones.
            let length =
                round % 10 == 0
                ? Int.random(in: 0...2048, using: &generator) : Int.random(in: 0...48, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Bias half the inputs towards a valid header so the fuzzing reaches the field decoders.
            if length >= 2, Bool.random(using: &generator) {
                bytes[0] = Envelope.formatVersion
                bytes[1] = UInt8.random(in: 1...10, using: &generator)
            }
            let result = decodeResult(ByteBuffer(bytes: bytes))
            switch result {
            case .success(let envelope):
                // Whatever decodes is a real envelope: it survives its own round trip.
                #expect(decodeResult(envelope.encoded()) == .success(envelope))
            case .failure(let error):
                // The header is checked first, whatever follows it.
                if let version = bytes.first, version != Envelope.formatVersion {
                    #expect(error == .unsupportedVersion(version))
                } else if bytes.count >= 2, !(1...10).contains(bytes[1]) {
                    #expect(error == .unknownKind(bytes[1]))
                }
            }
        }
    }

    @Test("mutating single bytes of valid envelopes never crashes the decoder")
    func mutationFuzz() {
        var generator = SeededGenerator(seed: 42)
        for sample in samples {
            let good = Array(sample.encoded().readableBytesView)
            for _ in 0..<500 {
                var bytes = good
                let flips = Int.random(in: 1...3, using: &generator)
                for _ in 0..<flips {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(
                        in: 0...255, using: &generator)
                }
                if case .success(let envelope) = decodeResult(ByteBuffer(bytes: bytes)) {
                    #expect(decodeResult(envelope.encoded()) == .success(envelope))
                }
            }
        }
    }
}
