import ImCore
import ImHelper
import ImServer
import ImTesting
import Testing

@Suite("Presence and events")
struct PresenceTests {
    @Test("online once when the first connection opens, offline once after the last closes, with meta")
    func eventsArePerUser() async throws {
        let cluster = try await TestCluster.start()
        let events = try await EventRecorder.start(cluster.helper)
        let tab1 = try await cluster.connect("alice", meta: "web")
        let online = try await events.next()
        #expect(online.kind == .online)
        #expect(online.client == "alice")
        #expect(online.meta == "web")
        let tab2 = try await cluster.connect("alice", meta: "web")
        _ = try await cluster.connect("bob")
        let next = try await events.next()
        #expect(next.client == "bob", "alice's second tab must not announce alice again")

        await tab1.close()
        #expect(try await cluster.helper.isOnline("alice"), "alice still has a tab open")
        await tab2.close()
        let offline = try await events.next()
        #expect(offline.kind == .offline)
        #expect(offline.client == "alice")
        #expect(offline.meta == "web")
        #expect(try await !cluster.helper.isOnline("alice"))
        events.stop()
        try await cluster.stop()
    }

    @Test("online queries: one user, many users, and paged lists")
    func onlineQueries() async throws {
        let cluster = try await TestCluster.start()
        var clients: [TestClient] = []
        for index in 0..<5 { clients.append(try await cluster.connect(ClientID(rawValue: "user\(index)"))) }
        let status = try await cluster.helper.onlineStatus(of: ["user1", "user3", "ghost"])
        #expect(status == ["user1": true, "user3": true, "ghost": false])
        let first = try await cluster.helper.onlineUsers(limit: 3)
        let second = try await cluster.helper.onlineUsers(after: first.last, limit: 3)
        #expect(first == ["user0", "user1", "user2"])
        #expect(second == ["user3", "user4"])
        try await cluster.stop()
    }

    @Test("force offline closes every connection of the user with 4003; a quick reconnect stays registered")
    func forceOffline() async throws {
        let cluster = try await TestCluster.start()
        try await cluster.helper.join("alice", channels: ["room"])
        let tab1 = try await cluster.connect("alice")
        let tab2 = try await cluster.connect("alice")
        let bob = try await cluster.connect("bob")
        let events = try await EventRecorder.start(cluster.helper)

        try await cluster.helper.forceOffline("alice")
        #expect(try await tab1.closeCode() == 4003)
        #expect(try await tab2.closeCode() == 4003)
        let offline = try await events.next()
        #expect(offline.kind == .offline && offline.client == "alice")

        let again = try await cluster.connect("alice")
        let online = try await events.next()
        #expect(online.kind == .online && online.client == "alice")
        #expect(try await cluster.helper.isOnline("alice"))
        #expect(try await cluster.helper.channels(of: "alice") == ["room"], "force offline must not strip memberships")
        try await cluster.helper.send(.text("still here"), from: "bob", toChannel: "room")
        #expect(try await again.next(type: "message")["data"] == .string("still here"))
        try await cluster.helper.send(.text("bob too"), from: "alice", to: ["bob"])
        #expect(try await bob.next(type: "message")["data"] == .string("bob too"))
        events.stop()
        try await cluster.stop()
    }

    @Test("graceful shutdown closes clients with 1001 and announces them offline")
    func gracefulShutdown() async throws {
        let cluster = try await TestCluster.start()
        let alice = try await cluster.connect("alice")
        let bob = try await cluster.connect("bob")
        let events = try await EventRecorder.start(cluster.helper)
        try await cluster.nodes[0].stop()
        #expect(try await alice.closeCode() == 1001)
        #expect(try await bob.closeCode() == 1001)
        let offline = Set([try await events.next(), try await events.next()].map { "\($0.kind) \($0.client)" })
        #expect(offline == ["offline alice", "offline bob"])
        #expect(try await cluster.helper.onlineUsers().isEmpty)
        events.stop()
        try await cluster.stop()
    }
}
