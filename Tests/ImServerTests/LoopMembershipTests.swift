import ImClient
import ImCore
import ImHelper
import ImTesting
import NIOPosix
import Testing

@testable import ImServer

/// Channel changes and force offline reach exactly the event loops holding a user's
/// connections, including connections handed to a loop after the change.
@Suite("Memberships across a node's loops")
struct LoopMembershipTests {
    @Test(
        "a user's connections on every loop join, get and leave a channel together; a later connection brings its channels"
    )
    func joinAndLeaveOnEveryLoop() async throws {
        try await TestCluster.with { cluster in
            let core = cluster.nodes[0].node.core
            // Alice's connections on at least two loops. The test's clients share the node's
            // group, which hands out loops in turn; one loop taken between two connections
            // puts the next on the other loop.
            var tabs: [ClientSession] = []
            var held: [Int] = []
            // Two, unless the node has one loop (a one-core machine).
            let loopsWanted = min(2, core.shards.count)
            while tabs.count < 6 {
                tabs.append(try await cluster.session("alice"))
                held = []
                for shard in core.shards {
                    held.append(try await shard.eventLoop.submit { shard.connectionCount }.get())
                }
                if held.filter({ $0 > 0 }).count >= loopsWanted { break }
                _ = MultiThreadedEventLoopGroup.singleton.next()
            }
            #expect(held.filter { $0 > 0 }.count >= loopsWanted, "connections per loop: \(held)")

            try await cluster.helper.join("alice", channels: ["room"])
            try await cluster.helper.send(.text("joined"), from: "bob", toChannel: "room")
            for tab in tabs { #expect(try await tab.nextMessage().value == .string("joined")) }

            // A connection made after the join, on whichever loop, is in the channel too.
            tabs.append(try await cluster.session("alice"))
            try await cluster.helper.send(.text("four"), from: "bob", toChannel: "room")
            for tab in tabs { #expect(try await tab.nextMessage().value == .string("four")) }

            try await cluster.helper.leave("alice", channels: ["room"])
            try await cluster.helper.send(.text("after leaving"), from: "bob", toChannel: "room")
            try await cluster.helper.send(.text("direct"), from: "bob", to: ["alice"])
            for tab in tabs { #expect(try await tab.nextMessage().value == .string("direct")) }

            try await cluster.helper.forceOffline("alice")
            for tab in tabs { #expect(try await tab.disconnection().code == 4003) }
        }
    }
}
