import ImCore
import NIOEmbedded
import Testing

@testable import ImServer

/// A delivery to users goes only to the shards holding their connections.
@Suite("Shards of each user")
struct UserShardsTests {
    @Test("the shards holding users: each once, none for a user without connections, kept per connection")
    func shardsHoldingUsers() {
        let (one, two, index) = Self.bobAndCarol()
        index.add("bob", on: one)
        index.add("dave", on: two)
        index.add("dave", on: one)
        #expect(identities(index.shards(holding: ["bob"])) == identities([one]))
        #expect(identities(index.shards(holding: ["bob", "carol", "dave"])) == identities([one, two]))
        #expect(index.shards(holding: ["ghost"]).isEmpty)
        // Bob's second connection on `one` keeps it; removing what was never added changes nothing.
        index.remove("bob", from: one)
        index.remove("bob", from: two)
        index.remove("ghost", from: one)
        #expect(identities(index.shards(holding: ["bob"])) == identities([one]))
        index.remove("bob", from: one)
        #expect(index.shards(holding: ["bob"]).isEmpty)
        #expect(identities(index.shards(holding: ["dave"])) == identities([two, one]))
    }

    @Test("a run of deliveries is split per shard, each shard getting the items it has receivers of, in order")
    func splitRun() {
        let (one, two, index) = Self.bobAndCarol()
        let run: [(Int, [ClientID])] = [
            (1, ["bob"]), (2, ["carol"]), (3, ["ghost"]), (4, ["carol", "bob"]), (5, ["bob"]),
        ]
        let split = index.split(run, receivers: \.1)
        #expect(split.count == 2)
        #expect(split.first?.shard === one)
        #expect(split.first?.items.map(\.0) == [1, 4, 5])
        #expect(split.last?.shard === two)
        #expect(split.last?.items.map(\.0) == [2, 4])
        #expect(index.split([(3, ["ghost"] as [ClientID])], receivers: \.1).isEmpty)
    }

    /// Two shards on embedded loops and an index with bob on the first, carol on the second.
    private static func bobAndCarol() -> (LoopHub, LoopHub, UserShards) {
        let (one, two) = (LoopHub(eventLoop: EmbeddedEventLoop()), LoopHub(eventLoop: EmbeddedEventLoop()))
        let index = UserShards()
        index.add("bob", on: one)
        index.add("carol", on: two)
        return (one, two, index)
    }

    private func identities(_ shards: [LoopHub]) -> [ObjectIdentifier] { shards.map(ObjectIdentifier.init) }
}
