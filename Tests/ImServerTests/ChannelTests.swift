import ImCore
import ImHelper
import ImServer
import ImTesting
import Testing

@Suite("Channel membership while connected")
struct ChannelTests {
    @Test("join while connected starts delivery at once; leave stops it")
    func joinAndLeaveWhileConnected() async throws {
        let cluster = try await TestCluster.start()
        let alice = try await cluster.connect("alice")
        try await cluster.helper.join("alice", channels: ["news", "sport"])
        try await cluster.helper.send(.text("first"), from: "editor", toChannel: "news")
        #expect(try await alice.next(type: "message")["data"] == .string("first"))

        try await cluster.helper.leave("alice", channels: ["news"])
        #expect(try await cluster.helper.channels(of: "alice") == ["sport"])
        try await cluster.helper.send(.text("missed"), from: "editor", toChannel: "news")
        try await cluster.helper.send(.text("goal"), from: "editor", toChannel: "sport")
        let next = try await alice.next(type: "message")
        #expect(next["data"] == .string("goal"), "the news message after leaving must not arrive")
        #expect(next["chan"]?.string == "sport")
        try await cluster.stop()
    }

    @Test("membership belongs to the user: it survives closing every connection")
    func membershipSurvivesReconnect() async throws {
        let cluster = try await TestCluster.start()
        let first = try await cluster.connect("alice")
        try await cluster.helper.join("alice", channels: ["room"])
        await first.close()
        try await waitUntil { try await !cluster.helper.isOnline("alice") }
        let second = try await cluster.connect("alice")
        try await cluster.helper.send(.text("welcome back"), from: "bob", toChannel: "room")
        #expect(try await second.next(type: "message")["data"] == .string("welcome back"))
        try await cluster.stop()
    }

    @Test("remove many users from a channel, clear a channel, and list channels with counts")
    func removeClearAndList() async throws {
        let cluster = try await TestCluster.start()
        let alice = try await cluster.connect("alice")
        let bob = try await cluster.connect("bob")
        for user: ClientID in ["alice", "bob", "carol"] { try await cluster.helper.join(user, channels: ["room"]) }
        try await cluster.helper.join("alice", channels: ["other"])

        var list = try await cluster.helper.channelList()
        #expect(
            list == [
                ChannelSummary(name: "other", members: 1, online: 1),
                ChannelSummary(name: "room", members: 3, online: 2),
            ])
        #expect(try await cluster.helper.members(of: "room", limit: 2) == ["alice", "bob"])
        #expect(try await cluster.helper.members(of: "room", after: "bob", limit: 2) == ["carol"])

        try await cluster.helper.remove(["bob", "carol"], fromChannel: "room")
        try await cluster.helper.send(.text("only alice"), from: "x", toChannel: "room")
        #expect(try await alice.next(type: "message")["data"] == .string("only alice"))
        try await cluster.helper.send(.text("marker"), from: "x", to: ["bob"])
        #expect(try await bob.next(type: "message")["data"] == .string("marker"), "bob was removed from room")

        #expect(try await cluster.helper.clear(channel: "room") == ["alice"])
        try await cluster.helper.send(.text("nobody"), from: "x", toChannel: "room")
        try await cluster.helper.send(.text("marker"), from: "x", to: ["alice"])
        #expect(try await alice.next(type: "message")["data"] == .string("marker"), "room was cleared")
        list = try await cluster.helper.channelList()
        #expect(list.map(\.name) == ["other"])
        try await cluster.stop()
    }
}
