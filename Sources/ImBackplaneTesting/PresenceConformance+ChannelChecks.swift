import ImBackplane

/// The bodies of the ``PresenceConformance`` checks about channels and identifiers.
extension PresenceHarness {
    func channelsJoinLeave() async throws {
        let alice = user("alice")
        let (one, two, three) = (channel("c1"), channel("c2"), channel("c3"))
        try await join(alice, channels: [three, one, two, one])
        try expect(
            try await channels(of: alice), [one, two, three],
            "channels(of: alice) after joining c3, c1, c2 (and c1 twice)")
        try await join(alice, channels: [two])
        try await join(alice, channels: [])
        try await leave(alice, channels: [])
        try expect(
            try await channels(of: alice), [one, two, three],
            "channels(of: alice) after joining c2 again and empty join/leave calls")
        try await leave(alice, channels: [two, channel("never-joined")])
        try expect(
            try await channels(of: alice), [one, three],
            "channels(of: alice) after leaving c2 and a channel she never joined")
        try expect(try await members(of: one), [alice], "members(of: c1)")
        try expect(try await members(of: two), [], "members(of: c2) after alice, its only member, left")
        try await leave(alice, channels: [one, three])
        try expect(try await channels(of: alice), [], "channels(of: alice) after leaving every channel")
        try expect(try await channels(of: user("stranger")), [], "channels(of:) a user who never joined any")
    }

    func membersPaging() async throws {
        let room = channel("room")
        let members = users(25)
        for index in [3, 17, 0, 24, 9, 12, 5, 21, 1, 14, 7, 19, 2, 23, 10, 16, 4, 11, 22, 6, 13, 20, 8, 18, 15] {
            try await join(members[index], channels: [room])
        }
        try await join(members[3], channels: [room])
        let paged = try await pageOwn(
            "members(of: room)", from: ClientID(rawValue: prefix), limit: 10, own: { _ in true }
        ) {
            try await self.members(of: room, after: $0, limit: $1)
        }
        try expect(
            paged.items, members, "the members of room, paged by 10 (25 users joined in shuffled order, one twice)")
        try expect(paged.pageSizes, [10, 10, 5], "how many members each page of 10 held")
        let firstPage = try await self.members(of: room, after: nil, limit: 10)
        try expect(firstPage, Array(members[0..<10]), "members(of: room, after: nil, limit: 10)")
        try expect(try await self.members(of: room, after: members[24], limit: 10), [], "members after the last one")
        try expect(
            try await self.members(of: room, after: members[4], limit: 3), Array(members[5..<8]),
            "members after the 5th, limit 3")
        try expect(
            try await self.members(of: channel("empty"), after: nil, limit: 10), [],
            "members of a channel nobody joined")
    }

    func channelNamesPaging() async throws {
        let alice = user("alice")
        let bob = user("bob")
        let names = (1...25).map { channel("ch" + padded($0)) }
        try await join(alice, channels: names.reversed())
        try await join(bob, channels: [names[0]])
        let paged = try await pageOwn("channelNames", from: prefix, limit: 10, own: isOwn) {
            try await channelNames(after: $0, limit: $1)
        }
        try expect(paged.items, names, "this check's channels, paged by 10 (alice joined 25, bob one of them too)")
        try expect(paged.pageSizes, [10, 10, 5], "how many of this check's 25 channels each page of 10 held")
        try expect(
            try await channelNames(after: names[4], limit: 3), Array(names[5..<8]), "channelNames after ch005, limit 3")

        try await leave(alice, channels: [names[4]])
        try expect(
            try await ownChannelNames(), names.filter { $0 != names[4] },
            "this check's channels after ch005's only member left")
        try await leave(alice, channels: [names[0]])
        try expect(
            try await ownChannelNames().first, names[0], "this check's first channel while bob is still in ch001")
        try await leave(bob, channels: [names[0]])
        try expect(
            try await ownChannelNames().first, names[1], "this check's first channel after ch001's last member left")
    }

    func statsMembersOnline() async throws {
        let nodeA = try await node("node-a")
        let room = channel("room")
        let members = users(5, named: "m")
        let outsider = user("outsider")
        for member in members { try await join(member, channels: [room]) }
        _ = try await connect(record(members[0], on: nodeA, "m1-1"))
        _ = try await connect(record(members[0], on: nodeA, "m1-2"))
        _ = try await connect(record(members[1], on: nodeA, "m2"))
        _ = try await connect(record(outsider, on: nodeA, "outsider"))
        try expect(
            try await stats(of: room), ChannelStats(members: 5, online: 2),
            "stats(of: room): 5 members, m001 online twice, m002 once, and an online non-member")
        _ = try await disconnect(record(members[1], on: nodeA, "m2"))
        try expect(
            try await stats(of: room), ChannelStats(members: 5, online: 1), "stats(of: room) after m002 went offline")
        try await leave(members[0], channels: [room])
        try expect(
            try await stats(of: room), ChannelStats(members: 4, online: 0), "stats(of: room) after m001 (online) left")
        _ = try await connect(record(members[2], on: nodeA, "m3"))
        try expect(
            try await stats(of: room), ChannelStats(members: 4, online: 1), "stats(of: room) after m003 came online")
        try expect(
            try await stats(of: channel("never-used")), ChannelStats(members: 0, online: 0),
            "stats of a channel nobody joined")
    }

    func removeUsersFromChannel() async throws {
        let room = channel("room")
        let other = channel("other")
        let (one, two, three) = (user("u1"), user("u2"), user("u3"))
        for member in [one, two, three] { try await join(member, channels: [room]) }
        try await join(one, channels: [other])
        try await remove([one, two, user("stranger")], from: room)
        try expect(try await members(of: room), [three], "members(of: room) after removing u1, u2 and a non-member")
        try expect(try await channels(of: one), [other], "channels(of: u1) after being removed from room only")
        try expect(try await channels(of: two), [], "channels(of: u2) after being removed from its only channel")
        try expect(try await stats(of: room).members, 1, "stats(of: room).members after the removal")
        try await remove([], from: room)
        try expect(try await members(of: room), [three], "members(of: room) after removing nobody")
        try await remove([three], from: room)
        try expect(try await members(of: room), [], "members(of: room) after removing its last member")
        try expect(try await ownChannelNames(), [other], "this check's channels after room lost its last member")
    }

    func clearChannel() async throws {
        let room = channel("room")
        let other = channel("other")
        let members = users(4)
        for member in members { try await join(member, channels: [room]) }
        try await join(members[0], channels: [other])
        let removed = try await clear(room)
        try expect(removed.sorted(), members, "the users clear(room) returned, sorted (each member exactly once)")
        try expect(try await self.members(of: room), [], "members(of: room) after clear")
        try expect(
            try await channels(of: members[0]), [other],
            "channels(of: u001) after room was cleared (its other channel stays)")
        try expect(try await channels(of: members[1]), [], "channels(of: u002) after its only channel was cleared")
        try expect(try await stats(of: room), ChannelStats(members: 0, online: 0), "stats(of: room) after clear")
        try expect(try await ownChannelNames(), [other], "this check's channels after room was cleared")
        try expect(try await clear(room), [], "clear(room) a second time")
        try expect(try await clear(channel("never-used")), [], "clear of a channel nobody joined")
    }

    func membershipSurvivesDisconnect() async throws {
        let nodeA = try await node("node-a")
        let nodeB = try await node("node-b")
        let alice = user("alice")
        let (one, two) = (channel("c1"), channel("c2"))
        try await join(alice, channels: [one, two])
        let tabs = [record(alice, on: nodeA, "tab-1"), record(alice, on: nodeB, "tab-2")]
        for tab in tabs { _ = try await connect(tab) }
        try expect(try await stats(of: one), ChannelStats(members: 1, online: 1), "stats(of: c1) with alice online")
        for tab in tabs { _ = try await disconnect(tab) }
        try expect(try await channels(of: alice), [one, two], "channels(of: alice) after all her connections closed")
        try expect(try await members(of: one), [alice], "members(of: c1) after all of alice's connections closed")
        try expect(try await stats(of: one), ChannelStats(members: 1, online: 0), "stats(of: c1) with alice offline")
        _ = try await connect(tabs[0])
        _ = try await removeNode(nodeA)
        try expect(try await channels(of: alice), [one, two], "channels(of: alice) after her node was removed")
        try expect(try await ownChannelNames(), [one, two], "this check's channels while their only member is offline")
    }

    func unusualIdentifiers() async throws {
        let nodeA = try await node("node-a")
        let users = [
            ":colon:id", " with space", ".dot.id", "-1@example.com", "-\u{FC}n\u{EF}c\u{F8}d\u{E9}-\u{1F600}", "-*",
            "-{braces}[]", "-quote\"'`", "-back\\slash/", "--1",
        ].map { user($0, separator: "") }
        let channels = [":chan:x", ".dot.chan", " space chan", "-\u{1F600}-\u{E9}", "-*", "-?[a]"]
            .map { channel($0, separator: "") }
        for (index, user) in users.enumerated() {
            try expect(try await connect(record(user, on: nodeA, "odd-\(index)")), 1, "connect of \(user)")
            try await join(user, channels: channels)
        }
        try expect(Set(try await nodes(of: users).keys), Set(users), "the users nodes(of:) knows")
        try expect(Set(try await ownOnlineUsers(limit: 3)), Set(users), "this check's onlineUsers, paged by 3")
        try expect(Set(try await ownChannelNames(limit: 4)), Set(channels), "this check's channels, paged by 4")
        for channel in channels {
            try expect(Set(try await members(of: channel)), Set(users), "members(of: \(channel))")
            try expect(
                try await stats(of: channel), ChannelStats(members: users.count, online: users.count),
                "stats(of: \(channel))")
        }
        for user in users {
            try expect(Set(try await self.channels(of: user)), Set(channels), "channels(of: \(user))")
        }
        try expect(Set(try await clear(channels[0])), Set(users), "clear(\(channels[0]))")
        try await remove(users, from: channels[1])
        try expect(try await members(of: channels[1]), [], "members(of: \(channels[1])) after removing everyone")
        for (index, user) in users.enumerated() {
            try expect(try await disconnect(record(user, on: nodeA, "odd-\(index)")), 0, "disconnect of \(user)")
        }
        let token = prefix + ":token id with space/\u{1F600}*"
        try expect(try await claimToken(id: token, ttl: .seconds(60)), true, "the first claim of an unusual token id")
        try expect(try await claimToken(id: token, ttl: .seconds(60)), false, "the second claim of an unusual token id")
    }
}
