import ImCore
import ImServer
import ImTesting
import Testing

@Suite("Local directory")
struct LocalDirectoryTests {
    @Test("attach and detach count a user's connections")
    func counting() {
        var directory = LocalDirectory()
        #expect(directory.connections(of: "alice") == 0)
        #expect(!directory.isLocal("alice"))

        _ = directory.attach("alice", channels: [])
        #expect(directory.connections(of: "alice") == 1)
        #expect(directory.isLocal("alice"))
        _ = directory.attach("alice", channels: [])
        _ = directory.attach("bob", channels: [])
        #expect(directory.connections(of: "alice") == 2)
        #expect(directory.connections(of: "bob") == 1)

        _ = directory.detach("alice")
        #expect(directory.connections(of: "alice") == 1)
        #expect(directory.isLocal("alice"))
        _ = directory.detach("alice")
        #expect(directory.connections(of: "alice") == 0)
        #expect(!directory.isLocal("alice"))
        #expect(directory.isLocal("bob"))
    }

    @Test("detaching a user who is not local changes nothing and never goes negative")
    func detachUnknown() {
        var directory = LocalDirectory()
        _ = directory.attach("bob", channels: ["room"])
        let change = directory.detach("alice")
        #expect(change.subscribe.isEmpty)
        #expect(change.unsubscribe.isEmpty)
        #expect(change.channels == nil)
        #expect(directory.connections(of: "alice") == 0)
        #expect(directory.channels == ["room"])

        // Extra detaches after the last one are also harmless.
        _ = directory.detach("bob")
        let again = directory.detach("bob")
        #expect(again.unsubscribe.isEmpty)
        #expect(directory.connections(of: "bob") == 0)
        _ = directory.attach("bob", channels: [])
        #expect(directory.connections(of: "bob") == 1)
    }

    @Test("a channel is subscribed only when it gains its first local user")
    func subscribeOnFirstLocalUser() {
        var directory = LocalDirectory()
        let alice = directory.attach("alice", channels: ["a", "b"])
        #expect(Set(alice.subscribe) == ["a", "b"])
        #expect(alice.subscribe.count == 2)
        #expect(alice.unsubscribe.isEmpty)
        #expect(alice.channels == ["a", "b"])

        let bob = directory.attach("bob", channels: ["b", "c"])
        #expect(bob.subscribe == ["c"])
        #expect(bob.unsubscribe.isEmpty)
        #expect(bob.channels == ["b", "c"])
        #expect(directory.channels == ["a", "b", "c"])
    }

    @Test("a channel is unsubscribed only when it loses its last local user")
    func unsubscribeOnLastLocalUser() {
        var directory = LocalDirectory()
        _ = directory.attach("alice", channels: ["a", "shared"])
        _ = directory.attach("bob", channels: ["shared", "b"])

        let aliceGone = directory.detach("alice")
        #expect(aliceGone.unsubscribe == ["a"])
        #expect(aliceGone.subscribe.isEmpty)
        #expect(aliceGone.channels == [])
        #expect(directory.channels == ["b", "shared"])

        let bobGone = directory.detach("bob")
        #expect(Set(bobGone.unsubscribe) == ["b", "shared"])
        #expect(bobGone.unsubscribe.count == 2)
        #expect(directory.channels.isEmpty)
    }

    @Test("a second connection of a user does not subscribe again, and closing one keeps the channels")
    func secondConnection() {
        var directory = LocalDirectory()
        _ = directory.attach("alice", channels: ["a", "b"])
        let second = directory.attach("alice", channels: ["a", "b"])
        #expect(second.subscribe.isEmpty)
        #expect(second.unsubscribe.isEmpty)
        #expect(second.channels == ["a", "b"])

        let firstClosed = directory.detach("alice")
        #expect(firstClosed.subscribe.isEmpty)
        #expect(firstClosed.unsubscribe.isEmpty)
        #expect(firstClosed.channels == ["a", "b"])
        #expect(directory.channels == ["a", "b"])

        let lastClosed = directory.detach("alice")
        #expect(Set(lastClosed.unsubscribe) == ["a", "b"])
        #expect(lastClosed.channels == [])
        #expect(directory.channels.isEmpty)
    }

    @Test("the last connection's detach unsubscribes only channels no other local user has")
    func detachLastUnsubscribesUnshared() {
        var directory = LocalDirectory()
        _ = directory.attach("alice", channels: ["mine", "ours", "everyone"])
        _ = directory.attach("alice", channels: ["mine", "ours", "everyone"])
        _ = directory.attach("bob", channels: ["ours"])
        _ = directory.attach("carol", channels: ["everyone", "hers"])

        #expect(directory.detach("alice").unsubscribe.isEmpty)
        let last = directory.detach("alice")
        #expect(last.unsubscribe == ["mine"])
        #expect(directory.channels == ["everyone", "hers", "ours"])
    }

    @Test("a re-attach replaces the user's channels with the freshly loaded membership")
    func reattachReplaces() {
        var directory = LocalDirectory()
        _ = directory.attach("alice", channels: ["old", "kept"])
        _ = directory.attach("bob", channels: ["bobs"])

        let change = directory.attach("alice", channels: ["kept", "new", "bobs"])
        #expect(change.subscribe == ["new"])
        #expect(change.unsubscribe == ["old"])
        #expect(change.channels == ["kept", "new", "bobs"])
        #expect(directory.connections(of: "alice") == 2)
        #expect(directory.channels == ["bobs", "kept", "new"])

        // Both of alice's connections now share the new set: one detach keeps it, the last drops it.
        #expect(directory.detach("alice").channels == ["kept", "new", "bobs"])
        let last = directory.detach("alice")
        #expect(Set(last.unsubscribe) == ["kept", "new"])
        #expect(directory.channels == ["bobs"])
    }

    @Test("a user's first connection with no channels needs no loop updated; later changes do")
    func newUserWithoutChannels() {
        var directory = LocalDirectory()
        let first = directory.attach("alice", channels: [])
        #expect(first.channels == nil)
        #expect(first.subscribe.isEmpty)
        #expect(directory.isLocal("alice"))
        // A second connection may land on another loop, which must learn the channels.
        #expect(directory.attach("alice", channels: []).channels == [])
        #expect(directory.attach("bob", channels: ["room"]).channels == ["room"])
    }

    @Test("a re-attach with no channels drops the user's channels without dropping the user")
    func reattachEmpty() {
        var directory = LocalDirectory()
        _ = directory.attach("alice", channels: ["a"])
        let change = directory.attach("alice", channels: [])
        #expect(change.unsubscribe == ["a"])
        #expect(change.channels == [])
        #expect(directory.isLocal("alice"))
        #expect(directory.channels.isEmpty)
    }

    @Test("join and leave only affect local users")
    func joinLeaveOnlyLocal() {
        var directory = LocalDirectory()
        _ = directory.attach("bob", channels: [])

        let join = directory.join("alice", channels: ["a"])
        #expect(join.subscribe.isEmpty)
        #expect(join.channels == nil)
        #expect(!directory.isLocal("alice"))
        #expect(directory.channels.isEmpty)

        let leave = directory.leave("alice", channels: ["a"])
        #expect(leave.unsubscribe.isEmpty)
        #expect(leave.channels == nil)

        // A join that was ignored is not remembered for a later attach.
        let attach = directory.attach("alice", channels: [])
        #expect(attach.subscribe.isEmpty)
        #expect(attach.channels == nil)

        // Once the user left, joins are ignored again.
        _ = directory.detach("alice")
        #expect(directory.join("alice", channels: ["z"]).channels == nil)
        #expect(directory.channels.isEmpty)
    }

    @Test("join subscribes only channels new to the node and reports the user's channels")
    func joinLocal() {
        var directory = LocalDirectory()
        _ = directory.attach("alice", channels: ["a"])
        _ = directory.attach("bob", channels: ["b"])

        let join = directory.join("alice", channels: ["a", "b", "c", "c"])
        #expect(join.subscribe == ["c"])
        #expect(join.unsubscribe.isEmpty)
        #expect(join.channels == ["a", "b", "c"])

        let again = directory.join("alice", channels: ["a", "c"])
        #expect(again.subscribe.isEmpty)
        #expect(again.channels == ["a", "b", "c"])

        let nothing = directory.join("alice", channels: [])
        #expect(nothing.subscribe.isEmpty && nothing.unsubscribe.isEmpty)
        #expect(nothing.channels == ["a", "b", "c"])

        // bob leaving b must not unsubscribe it: alice joined it.
        #expect(directory.leave("bob", channels: ["b"]).unsubscribe.isEmpty)
        #expect(directory.channels == ["a", "b", "c"])
    }

    @Test("leave unsubscribes a channel only when its last local member leaves")
    func leaveLocal() {
        var directory = LocalDirectory()
        _ = directory.attach("alice", channels: ["a", "shared"])
        _ = directory.attach("bob", channels: ["shared"])

        let leave = directory.leave("alice", channels: ["a", "shared", "never-joined"])
        #expect(leave.unsubscribe == ["a"])
        #expect(leave.subscribe.isEmpty)
        #expect(leave.channels == [])
        #expect(directory.isLocal("alice"), "leaving channels does not disconnect")

        let bobLeaves = directory.leave("bob", channels: ["shared"])
        #expect(bobLeaves.unsubscribe == ["shared"])
        #expect(directory.channels.isEmpty)

        // Leaving again is a no-op, and the counts did not go negative: a new member subscribes again.
        #expect(directory.leave("bob", channels: ["shared"]).unsubscribe.isEmpty)
        #expect(directory.join("alice", channels: ["shared"]).subscribe == ["shared"])
    }

    @Test("subscriptions always match the channels of local users (seeded random model check)")
    func modelCheck() {
        var generator = SeededGenerator(seed: 2024)
        let users: [ClientID] = ["u0", "u1", "u2", "u3", "u4"]
        let channelNames = ["c0", "c1", "c2", "c3", "c4", "c5"]
        var directory = LocalDirectory()
        // The reference model.
        var connections: [ClientID: Int] = [:]
        var membership: [ClientID: Set<String>] = [:]
        // What the node would be subscribed to if it followed every change.
        var subscribed: Set<String> = []

        func randomChannels() -> Set<String> {
            Set(channelNames.filter { _ in Int.random(in: 0..<3, using: &generator) == 0 })
        }

        for step in 0..<5_000 {
            let user = users.randomElement(using: &generator)!
            let change: LocalDirectory.Change
            let wasLocal = connections[user] != nil
            switch Int.random(in: 0..<4, using: &generator) {
            case 0:
                let channels = randomChannels()
                change = directory.attach(user, channels: channels)
                connections[user, default: 0] += 1
                membership[user] = channels
            case 1:
                change = directory.detach(user)
                if let count = connections[user] {
                    if count > 1 {
                        connections[user] = count - 1
                    } else {
                        connections[user] = nil
                        membership[user] = nil
                    }
                }
            case 2:
                let channels = Array(randomChannels())
                change = directory.join(user, channels: channels)
                if connections[user] != nil { membership[user]?.formUnion(channels) }
            default:
                let channels = Array(randomChannels())
                change = directory.leave(user, channels: channels)
                if connections[user] != nil { membership[user]?.subtract(channels) }
            }

            // Never subscribe twice or unsubscribe what is not subscribed.
            for channel in change.subscribe {
                #expect(!subscribed.contains(channel), "step \(step): \(channel) subscribed twice")
                subscribed.insert(channel)
            }
            for channel in change.unsubscribe {
                #expect(subscribed.contains(channel), "step \(step): \(channel) unsubscribed while not subscribed")
                subscribed.remove(channel)
            }
            #expect(Set(change.subscribe).isDisjoint(with: change.unsubscribe))

            let expected = membership.values.reduce(into: Set<String>()) { $0.formUnion($1) }
            #expect(subscribed == expected, "step \(step)")
            #expect(directory.channels == expected.sorted(), "step \(step)")
            #expect(directory.connections(of: user) == connections[user, default: 0], "step \(step)")
            #expect(directory.isLocal(user) == (connections[user] != nil), "step \(step)")
            if connections[user] != nil {
                // A new local user in no channel has nothing to tell the loops.
                let nothingToTell = !wasLocal && membership[user] == []
                #expect(change.channels == (nothingToTell ? nil : membership[user]), "step \(step)")
            }
            // Stop at the first divergence so one bug does not report thousands of issues.
            if subscribed != expected { break }
        }
    }
}
