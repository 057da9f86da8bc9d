import ImClient
import ImCore
import ImHelper
import ImServer
import ImTesting
import Testing

/// Ordinary connections, made with the Swift client (``ClientSession`` over ``ImClient``).
@Suite("Messaging end to end")
struct MessagingTests {
    @Test("a message to a user reaches both of the user's connections, once each")
    func pointToPointReachesEveryConnection() async throws {
        try await TestCluster.with { cluster in
            let tab1 = try await cluster.session("alice")
            let tab2 = try await cluster.session("alice")
            let bob = try await cluster.session("bob")

            let result = try await cluster.helper.send(
                try JSONPayload(json: #"{"text":"hi"}"#), from: "bob", to: ["alice", "alice"])
            #expect(result.offline.isEmpty)
            for tab in [tab1, tab2] {
                let message = try await tab.nextMessage()
                #expect(message.id == result.id)
                #expect(message.from == "bob")
                #expect(message.kind == .direct)
                #expect(message.value == .object(["text": .string("hi")]))
            }
            // Nothing else was sent to anybody: a broadcast marker is the next event everywhere.
            try await cluster.helper.broadcast(.text("marker"))
            for client in [tab1, tab2, bob] {
                let next = try await client.nextMessage()
                #expect(next.kind == .broadcast)
                #expect(next.value == .string("marker"))
                await client.close()
            }
        }
    }

    @Test("a channel message reaches its members and nobody else")
    func channelMessageReachesMembers() async throws {
        try await TestCluster.with { cluster in
            let alice = try await cluster.session("alice")
            let bob = try await cluster.session("bob")
            let carol = try await cluster.session("carol")
            try await cluster.helper.join("alice", channels: ["room1"])
            try await cluster.helper.join("bob", channels: ["room1", "room2"])

            let id = try await cluster.helper.send(.text("hello room"), from: "alice", toChannel: "room1")
            for member in [alice, bob] {
                let message = try await member.nextMessage()
                #expect(message.id == id)
                #expect(message.kind == .channel)
                #expect(message.channel == "room1")
                #expect(message.value == .string("hello room"))
            }
            try await cluster.helper.broadcast(.text("marker"))
            let next = try await carol.nextMessage()
            #expect(next.value == .string("marker"), "carol is not in room1 and must not get its message")
            for client in [alice, bob, carol] { await client.close() }
        }
    }
}
