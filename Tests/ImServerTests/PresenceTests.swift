import ImClient
import ImCore
import ImHelper
import ImServer
import ImTesting
import Testing

/// Ordinary connections, made with the Swift client (``ClientSession`` over ``ImClient``).
@Suite("Presence and events")
struct PresenceTests {
    @Test("online once when the first connection opens, offline once after the last closes, with meta")
    func eventsArePerUser() async throws {
        try await TestCluster.with { cluster in
            let events = try await EventRecorder.start(cluster.helper)
            let tab1 = try await cluster.session("alice", meta: "web")
            let online = try await events.next()
            #expect(online.kind == .online)
            #expect(online.client == "alice")
            #expect(online.meta == "web")
            let tab2 = try await cluster.session("alice", meta: "web")
            _ = try await cluster.session("bob")
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
        }
    }

    @Test("online queries: one user, many users, and paged lists")
    func onlineQueries() async throws {
        try await TestCluster.with { cluster in
            var clients: [ClientSession] = []
            for index in 0..<5 { clients.append(try await cluster.session(ClientID(rawValue: "user\(index)"))) }
            let status = try await cluster.helper.onlineStatus(of: ["user1", "user3", "ghost"])
            #expect(status == ["user1": true, "user3": true, "ghost": false])
            let first = try await cluster.helper.onlineUsers(limit: 3)
            let second = try await cluster.helper.onlineUsers(after: first.last, limit: 3)
            #expect(first == ["user0", "user1", "user2"])
            #expect(second == ["user3", "user4"])
        }
    }

    @Test("force offline closes every connection of the user with 4003; a quick reconnect stays registered")
    func forceOffline() async throws {
        try await TestCluster.with { cluster in
            try await cluster.helper.join("alice", channels: ["room"])
            let tab1 = try await cluster.session("alice")
            let tab2 = try await cluster.session("alice")
            let bob = try await cluster.session("bob")
            let events = try await EventRecorder.start(cluster.helper)

            try await cluster.helper.forceOffline("alice")
            for tab in [tab1, tab2] {
                let closed = try await tab.disconnection()
                #expect(closed.code == 4003)
                #expect(closed.stopped, "forced offline: the client does not reconnect")
            }
            let offline = try await events.next()
            #expect(offline.kind == .offline && offline.client == "alice")

            let again = try await cluster.session("alice")
            let online = try await events.next()
            #expect(online.kind == .online && online.client == "alice")
            #expect(try await cluster.helper.isOnline("alice"))
            #expect(
                try await cluster.helper.channels(of: "alice") == ["room"], "force offline must not strip memberships")
            try await cluster.helper.send(.text("still here"), from: "bob", toChannel: "room")
            #expect(try await again.nextMessage().value == .string("still here"))
            try await cluster.helper.send(.text("bob too"), from: "alice", to: ["bob"])
            #expect(try await bob.nextMessage().value == .string("bob too"))
            events.stop()
        }
    }

    @Test("graceful shutdown closes clients with 1001 and announces them offline")
    func gracefulShutdown() async throws {
        try await TestCluster.with { cluster in
            let alice = try await cluster.session("alice")
            let bob = try await cluster.session("bob")
            let events = try await EventRecorder.start(cluster.helper)
            try await cluster.nodes[0].stop()
            for client in [alice, bob] {
                let closed = try await client.disconnection()
                #expect(closed.code == 1001)
                #expect(!closed.stopped, "going away: the client reconnects")
            }
            let offline = Set([try await events.next(), try await events.next()].map { "\($0.kind) \($0.client)" })
            #expect(offline == ["offline alice", "offline bob"])
            #expect(try await cluster.helper.onlineUsers().isEmpty)
            events.stop()
        }
    }
}
