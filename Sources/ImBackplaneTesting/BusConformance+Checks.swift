import ImBackplane
import NIOCore

/// The bodies of the ``BusConformance`` checks.
extension BusHarness {
    func deliversToSubscriber() async throws {
        let room = subject("room")
        let subscriber = try await inbox("subscriber", to: [room])
        try await publish("hello", to: room)
        try await subscriber.expect("hello", on: room, "it was published after subscribe(_:) returned")
        try await publish("again", to: room)
        try await subscriber.expect("again", on: room, "a second message to the same subject")
    }

    func notDeliveredAfterUnsubscribe() async throws {
        let room = subject("room")
        let subscriber = try await inbox("subscriber", to: [room])
        let witness = try await inbox("witness", to: [room])
        try await publish("before", to: room)
        try await subscriber.expect("before", on: room, "still subscribed")
        try await witness.expect("before", on: room, "subscribed")

        try await subscriber.unsubscribe([room])
        try await publish("while-unsubscribed", to: room)
        try await witness.expect(
            "while-unsubscribed", on: room, "the witness stayed subscribed, proving the message was published")
        try await subscriber.subscribe([room])
        try await publish("marker", to: room)
        try await subscriber.expect(
            "marker", on: room,
            "\"while-unsubscribed\" was published after unsubscribe(_:) returned and must not be delivered (filter locally if the backend drops the subscription later); the marker published after subscribing again must be the next message"
        )
        try await witness.expect("marker", on: room, "subscribed throughout")
    }

    func unsubscribingUnknownSubjectIsHarmless() async throws {
        let room = subject("room")
        let subscriber = try await inbox("subscriber", to: [room])
        let other = try await inbox("other")
        try await subscriber.unsubscribe([subject("never-subscribed")])
        try await subscriber.subscribe([])
        try await subscriber.unsubscribe([])
        try await other.unsubscribe([room])
        try await publish("still-here", to: room)
        try await subscriber.expect(
            "still-here", on: room,
            "unsubscribing a subject it never subscribed, empty subscribe/unsubscribe calls, and another subscriber unsubscribing a subject that other never subscribed must change nothing"
        )
        try await other.subscribe([room])
        try await publish("marker", to: room)
        try await other.expect(
            "marker", on: room, "subscribed just before the marker was published, after \"still-here\"")
        try await subscriber.expect("marker", on: room, "subscribed throughout")
    }

    func notDeliveredBeforeSubscribe() async throws {
        let room = subject("room")
        let witness = try await inbox("witness", to: [room])
        try await publish("early", to: room)
        try await witness.expect("early", on: room, "subscribed, proving the message was accepted by the backend")
        let late = try await inbox("late subscriber", to: [room])
        try await publish("marker", to: room)
        try await late.expect(
            "marker", on: room,
            "\"early\" was accepted before this subscriber subscribed and must not be delivered to it; the marker must be its first message"
        )
        try await witness.expect("marker", on: room, "subscribed throughout")
    }

    func everySubscriberGetsOneCopy() async throws {
        let room = subject("room")
        var subscribers: [Inbox] = []
        for index in 1...3 { subscribers.append(try await inbox("subscriber \(index)", to: [room])) }
        try await publish("one", to: room)
        try await publish("two", to: room)
        for subscriber in subscribers {
            try await subscriber.expect("one", on: room, "each of 3 subscribers of the subject gets every message")
            try await subscriber.expect(
                "two", on: room, "each subscriber gets exactly one copy of \"one\", then \"two\"")
        }
    }

    func subscribingTwiceDeliversOnce() async throws {
        let room = subject("room")
        let subscriber = try await inbox("subscriber", to: [room])
        try await subscriber.subscribe([room])
        try await subscriber.subscribe([room, room])
        try await publish("one", to: room)
        try await publish("two", to: room)
        try await subscriber.expect("one", on: room, "subscribed (three times, which is the same as once)")
        try await subscriber.expect(
            "two", on: room, "subscribing a subject again must not deliver a second copy of \"one\"")

        let witness = try await inbox("witness", to: [room])
        try await subscriber.unsubscribe([room])
        try await publish("gone", to: room)
        try await witness.expect("gone", on: room, "subscribed, proving the message was published")
        try await subscriber.subscribe([room])
        try await publish("marker", to: room)
        try await subscriber.expect(
            "marker", on: room,
            "one unsubscribe(_:) removes a subject subscribed several times, so \"gone\" must not arrive; the marker must be next"
        )
    }

    func onlySubscribedSubjects() async throws {
        let room = subject("room")
        let others = [subject("room2"), subject("room.sub"), subject("roo"), subject("other")]
        let subscriber = try await inbox("subscriber", to: [room])
        let witness = try await inbox("witness", to: others)
        for other in others { try await publish("not-yours", to: other) }
        try await witness.expectAll(others.map { ("not-yours", $0) }, "the witness subscribed to all of them")
        try await publish("yours", to: room)
        try await subscriber.expect(
            "yours", on: room,
            "the subscriber subscribed only to room; messages to room2, room.sub, roo and other must not reach it")
        for other in others { try await publish("not-yours-2", to: other) }
        try await witness.expectAll(others.map { ("not-yours-2", $0) }, "the witness subscribed to all of them")
        try await publish("yours-2", to: room)
        try await subscriber.expect("yours-2", on: room, "only room is subscribed")
    }

    func unsubscribeKeepsOtherSubscribers() async throws {
        let room = subject("room")
        let leaving = try await inbox("leaving subscriber", to: [room])
        let staying = try await inbox("staying subscriber", to: [room])
        try await leaving.unsubscribe([room])
        try await publish("after-unsubscribe", to: room)
        try await staying.expect(
            "after-unsubscribe", on: room,
            "another subscriber unsubscribing the same subject must not end this one's subscription")
        try await leaving.subscribe([room])
        try await publish("marker", to: room)
        try await leaving.expect("marker", on: room, "\"after-unsubscribe\" was published while it was unsubscribed")
        try await staying.expect("marker", on: room, "subscribed throughout")
    }

    func closeKeepsOtherSubscribers() async throws {
        let room = subject("room")
        let lobby = subject("lobby")
        let closing = try await inbox("closing subscriber", to: [room, lobby])
        let staying = try await inbox("staying subscriber", to: [room])
        await closing.close()
        try await closing.expectEnd("close() finishes messages")
        try await publish("after-close", to: room)
        try await staying.expect(
            "after-close", on: room,
            "another subscriber of the same subject closing must not end this one's subscription")
        let newcomer = try await inbox("new subscriber", to: [lobby])
        try await publish("lobby", to: lobby)
        try await newcomer.expect("lobby", on: lobby, "subscribed after another subscriber of the subject closed")
    }

    func orderPerPublisherAndSubject() async throws {
        let first = subject("first")
        let second = subject("second")
        let subscriber = try await inbox("subscriber", to: [first, second])
        let count = 1_000
        for number in 0..<count {
            try await publish(String(number), to: first)
            try await publish(String(number), to: second)
        }
        let numbers = (0..<count).map(String.init)
        try await receive(
            [first: numbers, second: numbers], by: subscriber,
            "\(count) messages were published to each subject, interleaved, by one publisher")
    }

    func batchArrivesCompleteInOrder() async throws {
        let first = subject("first")
        let second = subject("second")
        let subscriber = try await inbox("subscriber", to: [first, second])
        try await publish(batch: [])
        var batch: [(text: String, subject: String)] = []
        for number in 0..<150 {
            batch.append(("b\(number)", first))
            batch.append(("b\(number)", second))
        }
        try await publish(batch: batch)
        try await publish("after-batch", to: first)
        try await publish("after-batch", to: second)
        let expected = (0..<150).map { "b\($0)" } + ["after-batch"]
        try await receive(
            [first: expected, second: expected], by: subscriber,
            "a batch of 300 messages over two subjects, then one single publish to each")
    }

    func payloadBytesIntact() async throws {
        let room = subject("room")
        let subscriber = try await inbox("subscriber", to: [room])
        var offset = ByteBuffer(string: "JUNK")
        offset.writeBytes([0, 1, 2, 0, 3])
        offset.moveReaderIndex(forwardBy: 4)
        let payloads: [(name: String, payload: ByteBuffer)] = [
            ("an empty payload", ByteBuffer()),
            ("every byte value 0...255", ByteBuffer(bytes: Array(0...255) as [UInt8])),
            ("only zero bytes", ByteBuffer(bytes: [0, 0, 0, 0])),
            ("zero bytes between text", ByteBuffer(bytes: Array("a\u{0}b\u{0}\r\n c".utf8))),
            ("invalid UTF-8", ByteBuffer(bytes: [0xFF, 0xFE, 0xC0, 0x80, 0xED, 0xA0, 0x80])),
            ("a buffer whose reader index is 4 (only the readable bytes 00 01 02 00 03 count)", offset),
        ]
        for (name, payload) in payloads { try await publish(payload, to: room, named: name) }
        for (name, payload) in payloads {
            try await subscriber.expect(payload, named: name, on: room, "payloads must arrive byte for byte, in order")
        }
    }

    func largePayloadIntact() async throws {
        let room = subject("room")
        let subscriber = try await inbox("subscriber", to: [room])
        var state: UInt32 = 0x1234_5678
        var bytes = [UInt8](repeating: 0, count: 1 << 20)
        for index in bytes.indices where index % 7 != 0 {
            state = state &* 1_664_525 &+ 1_013_904_223
            bytes[index] = UInt8(truncatingIfNeeded: state >> 24)
        }
        try await publish(ByteBuffer(bytes: bytes), to: room, named: "a 1 MiB payload")
        try await publish("after-large", to: room)
        let message = try await subscriber.nextMessage("a 1 MiB payload was published")
        let received = Array(message.payload.readableBytesView)
        guard message.subject == room, received == bytes else {
            let firstDifference =
                zip(received, bytes).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(received.count, bytes.count)
            throw failure(
                "subscriber: the 1 MiB payload arrived as \(received.count) bytes on \(message.subject), differing from byte \(firstDifference) on"
            )
        }
        try await subscriber.expect("after-large", on: room, "published after the 1 MiB payload")
    }

    func manySubjects() async throws {
        let subjects = (0..<100).map { subject("many.\(padded($0))") }
        let subscriber = try await inbox("subscriber", to: subjects)
        let witness = try await inbox("witness", to: subjects)
        for subject in subjects { try await publish("hello", to: subject) }
        try await subscriber.expectAll(subjects.map { ("hello", $0) }, "subscribed to 100 subjects in one call")
        try await witness.expectAll(subjects.map { ("hello", $0) }, "subscribed to 100 subjects in one call")
        try await subscriber.unsubscribe(subjects)
        for subject in subjects { try await publish("gone", to: subject) }
        try await witness.expectAll(subjects.map { ("gone", $0) }, "still subscribed to the 100 subjects")
        try await subscriber.subscribe([subjects[0]])
        try await publish("marker", to: subjects[0])
        try await subscriber.expect(
            "marker", on: subjects[0],
            "one unsubscribe(_:) call removed all 100 subjects, so no \"gone\" may arrive before the marker")
    }

    func closeFinishesMessages() async throws {
        let room = subject("room")
        let subscriber = try await inbox("subscriber", to: [room])
        try await publish("before-close", to: room)
        try await subscriber.expect("before-close", on: room, "subscribed")
        await subscriber.close()
        try await subscriber.expectEnd("close() must finish messages")
        try await publish("after-close", to: room)
        await subscriber.close()
        let idle = try await inbox("never-subscribed subscriber")
        await idle.close()
        try await idle.expectEnd("close() must finish messages of a subscriber that never subscribed")
    }

    func healthUpWhileRunning() async throws {
        guard bus.health.isUp else {
            throw failure("health is \(bus.health) right after it was .up, with run() running")
        }
        let room = subject("room")
        let subscriber = try await inbox("subscriber", to: [room])
        try await publish("ping", to: room)
        try await subscriber.expect("ping", on: room, "subscribed")
        guard bus.health.isUp else {
            throw failure("health is \(bus.health) while run() runs and a publish/subscribe round trip just worked")
        }
    }

    /// Receives messages until each subject's `expected` texts have arrived, in their order.
    private func receive(_ expected: [String: [String]], by inbox: Inbox, _ why: String) async throws {
        var next = expected.mapValues { _ in 0 }
        var remaining = expected.values.reduce(0) { $0 + $1.count }
        while remaining > 0 {
            let progress = next.sorted { $0.key < $1.key }.map {
                "\($0.value) of \(expected[$0.key]!.count) on \($0.key)"
            }
            let message = try await inbox.nextMessage("\(why); received \(progress.joined(separator: ", ")) so far")
            guard let sequence = expected[message.subject], let index = next[message.subject] else {
                throw failure("\(inbox.name): received \(describe(message)), a subject it did not subscribe to")
            }
            let got = String(buffer: message.payload)
            guard index < sequence.count else {
                throw failure(
                    "\(inbox.name): received \(describe(message)) after all \(sequence.count) expected messages of that subject (\(why))"
                )
            }
            guard got == sequence[index] else {
                let seen =
                    sequence.firstIndex(of: got).map {
                        $0 < index
                            ? "a duplicate of an earlier message" : "a later message: some were lost or reordered"
                    } ?? "not a message that was published"
                throw failure(
                    "\(inbox.name): expected \"\(sequence[index])\" on \(message.subject) next but received \"\(got)\", \(seen) (\(why); per-publisher order per subject must hold)"
                )
            }
            next[message.subject] = index + 1
            remaining -= 1
        }
    }
}
