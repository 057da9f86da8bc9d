import ImClient
import ImCore
import ImHelper
import ImServer
import ImTesting
import Testing

/// Ordinary connections, made with the Swift client (``ClientSession`` over ``ImClient``).
@Suite("Channel membership while connected")
struct ChannelTests {
    @Test("join while connected starts delivery at once; leave stops it")
    func joinAndLeaveWhileConnected() async throws {
        try await TestCluster.with { cluster in
            let alice = try await cluster.session("alice")
            try await cluster.helper.join("alice", channels: ["news", "sport"])
            try await cluster.helper.send(.text("first"), from: "editor", toChannel: "news")
            #expect(try await alice.nextMessage().value == .string("first"))

            try await cluster.helper.leave("alice", channels: ["news"])
            #expect(try await cluster.helper.channels(of: "alice") == ["sport"])
            try await cluster.helper.send(.text("missed"), from: "editor", toChannel: "news")
            try await cluster.helper.send(.text("goal"), from: "editor", toChannel: "sport")
            let next = try await alice.nextMessage()
            #expect(next.value == .string("goal"), "the news message after leaving must not arrive")
            #expect(next.channel == "sport")
        }
    }

    @Test("membership belongs to the user: it survives closing every connection")
    func membershipSurvivesReconnect() async throws {
        try await TestCluster.with { cluster in
            let first = try await cluster.session("alice")
            try await cluster.helper.join("alice", channels: ["room"])
            await first.close()
            try await waitUntil { try await !cluster.helper.isOnline("alice") }
            let second = try await cluster.session("alice")
            try await cluster.helper.send(.text("welcome back"), from: "bob", toChannel: "room")
            #expect(try await second.nextMessage().value == .string("welcome back"))
        }
    }

    @Test("remove many users from a channel, clear a channel, and list channels with counts")
    func removeClearAndList() async throws {
        try await TestCluster.with { cluster in
            let alice = try await cluster.session("alice")
            let bob = try await cluster.session("bob")
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
            #expect(try await alice.nextMessage().value == .string("only alice"))
            try await cluster.helper.send(.text("marker"), from: "x", to: ["bob"])
            #expect(try await bob.nextMessage().value == .string("marker"), "bob was removed from room")

            #expect(try await cluster.helper.clear(channel: "room") == ["alice"])
            try await cluster.helper.send(.text("nobody"), from: "x", toChannel: "room")
            try await cluster.helper.send(.text("marker"), from: "x", to: ["alice"])
            #expect(try await alice.nextMessage().value == .string("marker"), "room was cleared")
            list = try await cluster.helper.channelList()
            #expect(list.map(\.name) == ["other"])
        }
    }
}
