import ImCore
import ImHelper
import ImServer
import ImTesting
import Testing

@Suite("Messaging end to end")
struct MessagingTests {
    @Test("a message to a user reaches both of the user's connections, once each")
    func pointToPointReachesEveryConnection() async throws {
        let cluster = try await TestCluster.start()
        let tab1 = try await cluster.connect("alice")
        let tab2 = try await cluster.connect("alice")
        let bob = try await cluster.connect("bob")

        let result = try await cluster.helper.send(
            try JSONPayload(json: #"{"text":"hi"}"#), from: "bob", to: ["alice", "alice"])
        #expect(result.offline.isEmpty)
        for tab in [tab1, tab2] {
            let message = try await tab.next(type: "message")
            #expect(message["id"]?.string == result.id)
            #expect(message["from"]?.string == "bob")
            #expect(message["data"] == .object(["text": .string("hi")]))
        }
        // Nothing else was sent to anybody: a broadcast marker is the next frame everywhere.
        try await cluster.helper.broadcast(.text("marker"))
        for client in [tab1, tab2, bob] {
            let next = try await client.next(type: "message")
            #expect(next["data"] == .string("marker"))
        }
        try await cluster.stop()
    }

    @Test("a channel message reaches its members and nobody else")
    func channelMessageReachesMembers() async throws {
        let cluster = try await TestCluster.start()
        let alice = try await cluster.connect("alice")
        let bob = try await cluster.connect("bob")
        let carol = try await cluster.connect("carol")
        try await cluster.helper.join("alice", channels: ["room1"])
        try await cluster.helper.join("bob", channels: ["room1", "room2"])

        let id = try await cluster.helper.send(.text("hello room"), from: "alice", toChannel: "room1")
        for member in [alice, bob] {
            let message = try await member.next(type: "message")
            #expect(message["id"]?.string == id)
            #expect(message["chan"]?.string == "room1")
            #expect(message["data"] == .string("hello room"))
        }
        try await cluster.helper.broadcast(.text("marker"))
        let next = try await carol.next(type: "message")
        #expect(next["data"] == .string("marker"), "carol is not in room1 and must not get its message")
        try await cluster.stop()
    }
}
