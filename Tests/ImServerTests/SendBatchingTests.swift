import Foundation
import ImClient
import ImCore
import ImHelper
import ImServer
import ImTesting
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

/// A memory bus that can hold the next publish to a node subject until released, and records
/// every publish call: lets a test line up sends behind a batch on its way.
private final class GatedBus: Bus {
    private struct State {
        var armed = false
        var held: CheckedContinuation<Void, Never>?
        var nodeBatches: [[BusMessage]] = []
    }

    private let inner = MemoryBus()
    private let state = Mutex(State())

    var health: BackplaneHealth { inner.health }
    func run() async throws { try await inner.run() }
    func makeSubscriber() async throws -> any BusSubscriber { try await inner.makeSubscriber() }

    func publish(_ message: ByteBuffer, to subject: String) async throws {
        try await publish([BusMessage(subject: subject, payload: message)])
    }

    func publish(_ batch: [BusMessage]) async throws {
        let toNodes = batch.filter { $0.subject.hasPrefix("im.node.") }
        if !toNodes.isEmpty {
            await withCheckedContinuation { continuation in
                let release = state.withLock { state -> Bool in
                    state.nodeBatches.append(toNodes)
                    guard state.armed else { return true }
                    state.armed = false
                    state.held = continuation
                    return false
                }
                if release { continuation.resume() }
            }
        }
        try await inner.publish(batch)
    }

    /// Holds the next publish to a node subject.
    func arm() { state.withLock { $0.armed = true } }
    var isHolding: Bool { state.withLock { $0.held != nil } }
    var nodeBatches: [[BusMessage]] { state.withLock { $0.nodeBatches } }

    func release() {
        let held = state.withLock { state in
            defer { state.held = nil }
            return state.held
        }
        held?.resume()
    }
}

@Suite("Send batching")
struct SendBatchingTests {
    @Test("sends made while a batch is on its way leave together, as one batch envelope, and each arrives once")
    func concurrentSendsShareOneBatch() async throws {
        let bus = GatedBus()
        try await TestCluster.with(backplane: Backplane(bus: bus, presence: MemoryPresence())) { cluster in
            let bob = try await cluster.session("bob")
            let helper = cluster.helper

            bus.arm()
            let first = Task { try await helper.send(try JSONPayload(json: "0"), from: "alice", to: ["bob"]) }
            try await waitUntil { bus.isHolding }
            let before = bus.nodeBatches.count
            let others = (1...100).map { number in
                Task { try await helper.send(try JSONPayload(json: String(number)), from: "alice", to: ["bob"]) }
            }
            try await waitUntil { helper.queuedSends == 100 }
            bus.release()
            _ = try await first.value
            for task in others { _ = try await task.value }

            // The 100 waiting sends went out in one publish: one bus message holding a batch of 100.
            let batches = bus.nodeBatches
            #expect(batches.count == before + 1)
            let last = try #require(batches.last)
            #expect(last.count == 1)
            guard case .batch(let items)? = try? Envelope(decoding: last[0].payload) else {
                Issue.record("expected a batch envelope")
                return
            }
            #expect(items.count == 100)

            // Bob gets all 101 messages, each once; the one held back first comes first.
            var seen: [Int] = []
            for _ in 0...100 {
                let message = try await bob.nextMessage()
                guard case .number(let value)? = message.value else {
                    Issue.record("message data is not a number: \(message)")
                    break
                }
                seen.append(NSDecimalNumber(decimal: value).intValue)
            }
            #expect(seen.first == 0)
            #expect(seen.sorted() == Array(0...100))
        }
    }

    @Test("send(_ messages:) returns one result per message in order and delivers each once")
    func batchAPI() async throws {
        try await TestCluster.with { cluster in
            let bob = try await cluster.connect("bob")
            let carol = try await cluster.connect("carol")
            let results = try await cluster.helper.send([
                OutgoingMessage(try JSONPayload(json: "1"), from: "alice", to: ["bob"]),
                OutgoingMessage(try JSONPayload(json: "2"), from: "alice", to: ["nobody", "carol"]),
                OutgoingMessage(try JSONPayload(json: "3"), from: "alice", to: ["bob", "bob", "carol"]),
            ])
            #expect(results.count == 3)
            #expect(results.map(\.offline) == [[], ["nobody"], []])
            #expect(Set(results.map(\.id)).count == 3)
            for (client, expected) in [
                (bob, [results[0].id, results[2].id]), (carol, [results[1].id, results[2].id]),
            ] {
                var ids: [String] = []
                for _ in expected { ids.append(try await client.next(type: "message")["id"]?.string ?? "") }
                #expect(ids == expected)
            }
            // Nothing more arrives: a ping is answered before any other frame.
            try await bob.send(text: #"{"type":"ping"}"#)
            #expect(try await bob.nextJSON()["type"]?.string == "pong")
            #expect(try await cluster.helper.send([]).isEmpty)
        }
    }

    @Test(
        "a submit larger than one batch is split across batches, with another submit queued behind it: every result in its place, delivered in order"
    )
    func submitLargerThanABatch() async throws {
        try await TestCluster.with { cluster in
            let bob = try await cluster.session("bob")
            // 700 messages (one batch takes 512): even ones to bob, odd ones to an offline user.
            let messages = try (0..<700).map { number in
                OutgoingMessage(
                    try JSONPayload(json: String(number)), from: "alice",
                    to: [number.isMultiple(of: 2) ? "bob" : ClientID(rawValue: "ghost-\(number)")])
            }
            async let large = cluster.helper.submit(messages)
            let straggler = OutgoingMessage(try JSONPayload(json: "-1"), from: "alice", to: ["ghost-x", "bob"])
            async let small = cluster.helper.submit([straggler])
            let (largeResults, smallResults) = await (large, small)
            let offline = try largeResults.map { try $0.get().offline }
            #expect(offline == (0..<700).map { $0.isMultiple(of: 2) ? [] : [ClientID(rawValue: "ghost-\($0)")] })
            #expect(try smallResults.map { try $0.get().offline } == [["ghost-x"]])
            let ids = try largeResults.map { try $0.get().id }
            #expect(Set(ids).count == 700)
            var received: [String] = []
            for _ in 0..<351 { received.append(try await bob.nextMessage().json) }
            let fromLarge = received.filter { $0 != "-1" }
            #expect(fromLarge == stride(from: 0, to: 700, by: 2).map(String.init))
            #expect(received.contains("-1"))
        }
    }

    @Test("a large batch is split into bus messages of at most about 256 KiB, delivered in order")
    func largeBatchesSplit() async throws {
        let bus = GatedBus()
        try await TestCluster.with(backplane: Backplane(bus: bus, presence: MemoryPresence())) { cluster in
            let bob = try await cluster.session("bob")
            let filler = String(repeating: "x", count: 1000)
            let messages = try (0..<400).map { number in
                OutgoingMessage(
                    try JSONPayload(json: #"{"n":\#(number),"f":"\#(filler)"}"#), from: "alice", to: ["bob"])
            }
            let before = bus.nodeBatches.count
            let results = try await cluster.helper.send(messages)
            #expect(results.count == 400)
            let batches = bus.nodeBatches.dropFirst(before)
            #expect(batches.count == 1, "one publish")
            let sizes = batches.flatMap { $0.map(\.payload.readableBytes) }
            #expect(sizes.count >= 2, "\(sizes)")
            #expect(sizes.allSatisfy { $0 <= 256 * 1024 + 2048 }, "\(sizes)")
            var ids: [String] = []
            for _ in 0..<400 { ids.append(try await bob.nextMessage().id) }
            #expect(ids == results.map(\.id))
        }
    }

    @Test("messages to a user and to a channel in one batch reach a member in the order sent")
    func orderAcrossSubjects() async throws {
        try await TestCluster.with { cluster in
            let bob = try await cluster.session("bob")
            try await cluster.helper.join("bob", channels: ["room"])
            let payload = try JSONPayload(json: "1")
            let results = try await cluster.helper.send([
                OutgoingMessage(payload, from: "alice", to: ["bob"]),
                OutgoingMessage(payload, from: "alice", toChannel: "room"),
                OutgoingMessage(payload, from: "alice", to: ["bob"]),
                .broadcast(payload),
                OutgoingMessage(payload, from: "alice", to: ["bob"]),
            ])
            var ids: [String] = []
            for _ in results { ids.append(try await bob.nextMessage().id) }
            #expect(ids == results.map(\.id))
        }
    }

    @Test(
        "messages to several channels in one batch reach each channel's members; an invalid channel fails its message alone"
    )
    func channelsInOneBatch() async throws {
        try await TestCluster.with { cluster in
            let bob = try await cluster.session("bob")
            let carol = try await cluster.session("carol")
            try await cluster.helper.join("bob", channels: ["a"])
            try await cluster.helper.join("carol", channels: ["b"])
            let channels = ["a", "a", "b", "", "a", "b", String(repeating: "c", count: 201), "b"]
            let results = await cluster.helper.submit(
                try channels.enumerated().map { number, channel in
                    OutgoingMessage(try JSONPayload(json: String(number)), from: "alice", toChannel: channel)
                })
            let failed = results.indices.filter { (try? results[$0].get()) == nil }
            #expect(failed == [3, 6])
            for (session, channel) in [(bob, "a"), (carol, "b")] {
                let expected = channels.indices.filter { channels[$0] == channel }.map(String.init)
                var seen: [String] = []
                for _ in expected { seen.append(try await session.nextMessage().json) }
                #expect(seen == expected, "\(channel)")
            }
        }
    }

    @Test("each message of a batch keeps its own id, and onSend hears each one sent, once and in order")
    func idsAndAuditInOneBatch() async throws {
        let heard = Mutex<[SentMessage]>([])
        try await TestCluster.with { cluster in
            let helper = ImHelper(
                backplane: cluster.backplane, tokens: cluster.helper.tokens,
                configuration: HelperConfiguration(onSend: { sent in heard.withLock { $0.append(sent) } }))
            let bob = try await cluster.session("bob")
            try await helper.join("bob", channels: ["a"])
            // Runs of channel messages, broken by a refused message, a message to a user and a
            // broadcast.
            let targets: [OutgoingMessage.Target] = [
                .channel("a"), .channel("a"), .channel("a"), .channel(""), .channel("a"),
                .users(["bob"], receipt: false), .everyone, .channel("a"), .channel("a"),
            ]
            let messages = try targets.enumerated().map { number, target in
                let data = try JSONPayload(json: String(number))
                switch target {
                case .users(let receivers, _): return OutgoingMessage(data, from: "alice", to: receivers)
                case .channel(let channel): return OutgoingMessage(data, from: "alice", toChannel: channel)
                case .everyone: return OutgoingMessage.broadcast(data, from: "alice")
                }
            }
            let results = await helper.submit(messages)
            let sent = results.indices.filter { (try? results[$0].get()) != nil }
            #expect(sent == [0, 1, 2, 4, 5, 6, 7, 8])
            let ids = sent.compactMap { try? results[$0].get().id }
            #expect(Set(ids).count == sent.count, "every message has an id of its own: \(ids)")
            // onSend was called before submit returned: each sent message, in order, with its id.
            let audit = heard.withLock { $0 }
            #expect(audit.map(\.id) == ids)
            #expect(audit.map(\.data.json) == sent.map(String.init))
            // Bob gets each of them (all reach him) with the id its result gave.
            var received: [(String, String)] = []
            for _ in sent {
                let message = try await bob.nextMessage()
                received.append((message.id, message.json))
            }
            #expect(received.map(\.0) == ids)
            #expect(received.map(\.1) == sent.map(String.init))
        }
    }

    @Test(
        "a connection flushed moments ago gets its next messages in one later write, none lost",
        arguments: [
            Duration.zero, .milliseconds(5), .milliseconds(300),
        ])
    func flushPacing(_ interval: Duration) async throws {
        try await TestCluster.with(configure: { configuration, _ in configuration.flushInterval = interval }) {
            cluster in
            let bob = try await cluster.session("bob")
            // `ready` was just flushed, so with a long interval these wait for the timed flush.
            for number in 1...20 {
                try await cluster.helper.send(try JSONPayload(json: String(number)), from: "alice", to: ["bob"])
            }
            var seen: [String] = []
            for _ in 1...20 { seen.append(try await bob.nextMessage().json) }
            #expect(seen == (1...20).map(String.init))
        }
    }
}
