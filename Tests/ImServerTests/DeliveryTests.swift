import ImClient
import ImCore
import ImHelper
import ImServer
import ImTesting
import Testing

@Suite("Broadcast and receipts")
struct DeliveryTests {
    @Test("a broadcast reaches every connection of every user")
    func broadcastReachesEveryone() async throws {
        try await TestCluster.with { cluster in
            let clients = [
                try await cluster.session("alice"), try await cluster.session("alice"),
                try await cluster.session("bob"), try await cluster.session("carol"),
            ]
            let id = try await cluster.helper.broadcast(try JSONPayload(json: #"{"notice":"maintenance"}"#))
            for client in clients {
                let message = try await client.nextMessage()
                #expect(message.id == id)
                #expect(message.from == "system")
                #expect(message.kind == .broadcast)
                #expect(message.value?["notice"]?.string == "maintenance")
            }
        }
    }

    @Test("the Swift client acknowledges on its own: the sender gets delivered and acked")
    func clientAcknowledges() async throws {
        try await TestCluster.with { cluster in
            let alice = try await cluster.session("alice")
            _ = try await cluster.session("bob")
            let result = try await cluster.helper.send(.text("ping?"), from: "alice", to: ["bob"], receipt: true)
            var statuses: Set<IncomingReceipt.Status> = []
            while statuses.count < 2 {
                let receipt = try await alice.nextReceipt()
                #expect(receipt.id == result.id && receipt.to == "bob")
                statuses.insert(receipt.status)
            }
            #expect(statuses == [.delivered, .acked])
        }
    }

    // The raw wire protocol from here on: acks sent by hand (twice), pings and pongs.
    @Test("receipts: delivered and offline right away, acked when the receiver acknowledges")
    func receiptsOfAllThreeKinds() async throws {
        try await TestCluster.with { cluster in
            let alice = try await cluster.connect("alice")
            let bob = try await cluster.connect("bob")

            let result = try await cluster.helper.send(
                .text("ping?"), from: "alice", to: ["bob", "carol"], receipt: true)
            #expect(result.offline == ["carol"])

            var statuses: [String: String] = [:]
            for _ in 0..<2 {
                let receipt = try await alice.next(type: "receipt")
                #expect(receipt["id"]?.string == result.id)
                statuses[receipt["to"]?.string ?? "?"] = receipt["status"]?.string
            }
            #expect(statuses == ["bob": "delivered", "carol": "offline"])

            let message = try await bob.next(type: "message")
            #expect(message["receipt"] == .bool(true))
            try await bob.send(text: #"{"type":"ack","id":"\#(result.id)"}"#)
            let acked = try await alice.next(type: "receipt")
            #expect(acked["status"]?.string == "acked")
            #expect(acked["to"]?.string == "bob")
            #expect(acked["id"]?.string == result.id)

            // A second ack of the same message produces no second receipt: a ping answered with pong is next.
            try await bob.send(text: #"{"type":"ack","id":"\#(result.id)"}"#)
            try await alice.send(text: #"{"type":"ping"}"#)
            #expect(try await alice.nextJSON()["type"]?.string == "pong")
        }
    }

    @Test("a message without receipt asks for no ack and sends no receipt")
    func noReceiptUnlessAsked() async throws {
        try await TestCluster.with { cluster in
            let alice = try await cluster.connect("alice")
            let bob = try await cluster.connect("bob")
            try await cluster.helper.send(.text("quiet"), from: "alice", to: ["bob"])
            let message = try await bob.next(type: "message")
            #expect(message["receipt"] == nil)
            try await alice.send(text: #"{"type":"ping"}"#)
            #expect(try await alice.nextJSON()["type"]?.string == "pong", "alice must get no receipt")
        }
    }

    @Test("the onSend audit hook sees every send")
    func auditHook() async throws {
        let seen = AsyncQueue<SentMessage>()
        try await TestCluster.with { cluster in
            let helper = ImHelper(
                backplane: cluster.backplane, tokens: cluster.helper.tokens,
                configuration: HelperConfiguration(onSend: { seen.push($0) }))
            let id = try await helper.send(.text("x"), from: "a", toChannel: "room")
            let sent = try await seen.next(timeout: .seconds(2))
            #expect(sent?.id == id)
            #expect(sent?.target == .channel("room"))
        }
    }
}
