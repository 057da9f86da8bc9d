import Foundation
import ImClient
import ImCore
import ImHelper
import ImTesting
import Synchronization
import Testing

/// The Swift client against a real node.
@Suite("ImClient, the Swift client")
struct ImClientTests {
    @Test("ready, then messages of the three kinds with their bodies byte for byte, in order")
    func receives() async throws {
        try await TestCluster.with { cluster in
            let client = ImClient(configuration: ClientConfiguration.quickRetries) {
                try await cluster.url(for: "alice")
            }
            client.connect()
            let events = ClientSession(client)
            guard
                case .ready(let name, _) = try await events.next(where: { if case .ready = $0 { true } else { false } })
            else { throw TestClientError.closed }
            #expect(name == "alice")
            try await cluster.helper.join("alice", channels: ["room"])
            let body = #"{ "n" : 12345678901234567890 }"#
            try await cluster.helper.send(try JSONPayload(json: body), from: "bob", to: ["alice"])
            try await cluster.helper.send(.text("to the room"), from: "bob", toChannel: "room")
            try await cluster.helper.broadcast(.text("to all"))
            var messages: [IncomingMessage] = []
            while messages.count < 3 {
                if case .message(let message) = try await events.next(where: {
                    if case .message = $0 { true } else { false }
                }) {
                    messages.append(message)
                }
            }
            #expect(messages.map(\.kind) == [.direct, .channel, .broadcast])
            #expect(messages[0].json == body, "the body exactly as sent")
            #expect(messages[1].channel == "room")
            #expect(try messages[1].decode(String.self) == "to the room")
            #expect(messages[2].from == "system")
            await client.close()
        }
    }

    @Test("a message that asks for a receipt is acknowledged by the client on its own")
    func acknowledges() async throws {
        try await TestCluster.with { cluster in
            let bob = try await cluster.connect("bob")
            let client = ImClient(configuration: ClientConfiguration.quickRetries) {
                try await cluster.url(for: "alice")
            }
            client.connect()
            let events = ClientSession(client)
            _ = try await events.next(where: { if case .ready = $0 { true } else { false } })
            let sent = try await cluster.helper.send(.text("hi"), from: "bob", to: ["alice"], receipt: true)
            // `delivered` and `acked` may come in either order (docs/protocol.md §2).
            var statuses: [String] = []
            while !(statuses.contains("acked") && statuses.contains("delivered")) {
                let receipt = try await bob.next(type: "receipt")
                #expect(receipt["id"]?.string == sent.id)
                statuses.append(receipt["status"]?.string ?? "")
            }
            #expect(statuses.sorted() == ["acked", "delivered"])
            await client.close()
            await bob.close()
        }
    }

    @Test("a refused token or a provider that returns no URL is retried with a fresh URL; 4003 stops it")
    func reconnectsAndStops() async throws {
        try await TestCluster.with { cluster in
            let calls = Atomic<Int>(0)
            let client = ImClient(configuration: ClientConfiguration.quickRetries) {
                switch calls.add(1, ordering: .relaxed).newValue {
                case 1: return "undefined"
                case 2: return cluster.nodes[0].url + "?token=forged"
                default: return try await cluster.url(for: "alice")
                }
            }
            client.connect()
            let events = ClientSession(client)
            var reasons: [String] = []
            while true {
                let event = try await events.next(where: { _ in true })
                if case .disconnected(_, let reason, let retry) = event {
                    #expect(retry != nil, "it retries")
                    reasons.append(reason)
                }
                if case .ready = event { break }
            }
            #expect(calls.load(ordering: .relaxed) == 3, "a fresh URL for every attempt")
            #expect(reasons.count == 2)
            #expect(reasons.first?.contains("not a ws:// or wss:// URL") == true, "\(reasons)")
            #expect(reasons.last?.contains("401") == true, "\(reasons)")

            try await cluster.helper.forceOffline("alice")
            let final = try await events.next(where: { if case .disconnected = $0 { true } else { false } })
            guard case .disconnected(let code, _, let retry) = final else { throw TestClientError.closed }
            #expect(code == 4003)
            #expect(retry == nil, "forced offline: no reconnect")
            #expect(await events.ended(), "the events end")
            #expect(calls.load(ordering: .relaxed) == 3)
        }
    }

    @Test("a consumer that falls behind keeps the newest events up to the bound; the rest are counted as dropped")
    func boundedEvents() async throws {
        try await TestCluster.with { cluster in
            var configuration = ClientConfiguration.quickRetries
            configuration.eventBufferLimit = 4
            let client = ImClient(configuration: configuration) { try await cluster.url(for: "alice") }
            client.connect()
            // Nobody reads the events yet: wait until the node lists alice, then send 50.
            try await waitUntil { try await cluster.helper.isOnline("alice") }
            for number in 1...50 {
                try await cluster.helper.send(try JSONPayload(json: String(number)), from: "bob", to: ["alice"])
            }
            // ready and 50 messages: 51 events, 4 kept.
            try await waitUntil { client.droppedEvents == 47 }
            var kept: [String] = []
            for await event in client.events {
                if case .message(let message) = event { kept.append(message.json) }
                if kept.count == 4 { break }
            }
            #expect(kept == ["47", "48", "49", "50"])
            await client.close()
        }
    }
}

/// The compact encoding (docs/protocol.md §10): MessagePack binary frames for clients that ask.
@Suite("Compact encoding")
struct CompactEncodingTests {
    @Test("the Swift client with MessagePack gets ready, the three kinds of message and receipts, and acks")
    func swiftClient() async throws {
        try await TestCluster.with { cluster in
            var configuration = ClientConfiguration.quickRetries
            configuration.encoding = .messagePack
            let alice = try await cluster.session("alice", configuration: configuration)
            let bob = try await cluster.session("bob", configuration: configuration)
            try await cluster.helper.join("alice", channels: ["room"])
            let body = #"{ "n" : [1, 2.5, "three"] }"#
            let direct = try await cluster.helper.send(
                try JSONPayload(json: body), from: "bob", to: ["alice"], receipt: true)
            let inRoom = try await cluster.helper.send(.text("to the room"), from: "bob", toChannel: "room")
            let everyone = try await cluster.helper.broadcast(.text("to all"))
            let first = try await alice.nextMessage()
            #expect(first.id == direct.id && first.kind == .direct && first.from == "bob" && first.wantsReceipt)
            #expect(first.json == body, "the body exactly as sent")
            #expect(first.timestamp > 0)
            let second = try await alice.nextMessage()
            #expect(second.id == inRoom && second.kind == .channel && second.channel == "room")
            let third = try await alice.nextMessage()
            #expect(third.id == everyone && third.kind == .broadcast && third.from == "system")
            var statuses: Set<IncomingReceipt.Status> = []
            while statuses.count < 2 { statuses.insert(try await bob.nextReceipt().status) }
            #expect(statuses == [.delivered, .acked], "alice's client acked over the compact connection")
        }
    }

    @Test("frames are binary MessagePack and smaller; JSON clients of the same node still get JSON text")
    func wireFrames() async throws {
        try await TestCluster.with { cluster in
            var options = TestClient.Options()
            options.subprotocols = ["imserver.v1.msgpack"]
            let compact = try await TestClient.connect(to: try await cluster.url(for: "alice"), options: options)
            guard case .binary(let ready) = try await compact.next() else {
                Issue.record("ready is not a binary frame")
                return
            }
            #expect(Array(ready.readableBytesView.prefix(2)) == [0x93, 0x00], "[0, client, node]")
            let json = try await cluster.connect("alice")
            let payload = try JSONPayload(json: #"{"text":"a message of some sixty-four bytes, as in the benchmark"}"#)
            _ = try await cluster.helper.send(payload, from: "bob", to: ["alice"])
            guard case .binary(let packed) = try await compact.next(), case .text(let text) = try await json.next()
            else {
                Issue.record("expected a binary frame on the compact connection and a text frame on the other")
                return
            }
            #expect(packed.getInteger(at: packed.readerIndex, as: UInt8.self) == 0x97, "an array of seven")
            #expect(
                packed.readableBytes * 10 < text.utf8.count * 8, "\(packed.readableBytes) vs \(text.utf8.count) bytes")
            try await compact.send(text: #"{"type":"ping"}"#)
            guard case .binary(let pong) = try await compact.next() else {
                Issue.record("pong is not a binary frame")
                return
            }
            #expect(Array(pong.readableBytesView) == [0x91, 0x03])
            await compact.close()
            await json.close()
        }
    }
}
