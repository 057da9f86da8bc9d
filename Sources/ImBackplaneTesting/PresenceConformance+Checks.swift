import ImBackplane

/// The bodies of the ``PresenceConformance`` checks about connections, nodes and tokens.
extension PresenceHarness {
    func connectCountsPerUser() async throws {
        let nodeA = try await node("node-a")
        let nodeB = try await node("node-b")
        let alice = user("alice")
        let bob = user("bob")
        let first = record(alice, on: nodeA, "alice-1")
        try expect(try await connect(first), 1, "connect of alice's first connection (she just came online)")
        try expect(try await connect(record(alice, on: nodeA, "alice-2")), 2, "connect of alice's second connection")
        try expect(try await connect(first), nil, "connect of a record registered already must return nil")
        try expect(
            try await connect(record(bob, on: nodeA, "bob-1")), 1,
            "connect of bob's first connection (counts are per user)")
        try expect(
            try await connect(record(alice, on: nodeB, "alice-3")), 3,
            "connect of alice's third connection, on another node")
        try expect(
            try await nodes(of: [alice, bob]), [alice: [nodeA, nodeB], bob: [nodeA]], "nodes(of: [alice, bob])")
    }

    func disconnectCountsDown() async throws {
        let nodeA = try await node("node-a")
        let nodeB = try await node("node-b")
        let alice = user("alice")
        let connections = [record(alice, on: nodeA, "1"), record(alice, on: nodeA, "2"), record(alice, on: nodeB, "3")]
        for (index, connection) in connections.enumerated() {
            try expect(try await connect(connection), index + 1, "connect of alice's connection \(index + 1)")
        }
        try expect(try await disconnect(connections[1]), 2, "disconnect of one of alice's 3 connections")
        try expect(try await disconnect(connections[2]), 1, "disconnect of her connection on node-b")
        try expect(
            try await nodes(of: [alice]), [alice: [nodeA]], "nodes(of: [alice]) with one connection left on node-a")
        try expect(
            try await disconnect(connections[0]), 0, "disconnect of alice's last connection (she just went offline)")
        try expect(try await nodes(of: [alice]), [:], "nodes(of: [alice]) once she is offline")
        try expect(try await ownOnlineUsers().contains(alice), false, "alice among onlineUsers once offline")
        try expect(try await disconnect(connections[0]), nil, "disconnect of a record disconnected already")
        try expect(
            try await disconnect(record(user("never"), on: nodeA, "never")), nil,
            "disconnect of a record never connected")
        try expect(try await connect(connections[0]), 1, "connect after going offline (she just came online again)")
        try expect(try await ownOnlineUsers(), [alice], "this check's onlineUsers once alice is back")
    }

    func nodesOfManyUsers() async throws {
        let nodeA = try await node("node-a")
        let nodeB = try await node("node-b")
        let users = self.users(30)
        var expected: [ClientID: Set<NodeID>] = [:]
        for (index, user) in users.enumerated() {
            switch index % 3 {
            case 1:
                _ = try await connect(record(user, on: nodeA, "\(index)-a"))
                expected[user] = [nodeA]
            case 2:
                _ = try await connect(record(user, on: nodeA, "\(index)-a"))
                _ = try await connect(record(user, on: nodeB, "\(index)-b1"))
                _ = try await connect(record(user, on: nodeB, "\(index)-b2"))
                expected[user] = [nodeA, nodeB]
            default:
                _ = try await connect(record(user, on: nodeA, "\(index)-gone"))
                _ = try await disconnect(record(user, on: nodeA, "\(index)-gone"))
            }
        }
        try expect(
            try await nodes(of: users + [users[1], users[2], users[3]]), expected,
            "nodes(of:) for 30 users (10 offline, 10 on node-a, 10 on node-a and node-b, 3 listed twice)")
        try expect(try await nodes(of: []), [:], "nodes(of: [])")
    }

    func onlineUsersPaging() async throws {
        let nodeA = try await node("node-a")
        let nodeB = try await node("node-b")
        let everyone = users(30)
        var online: [ClientID] = []
        for (index, user) in everyone.enumerated() {
            _ = try await connect(record(user, on: nodeA, "\(index)"))
            if index % 6 == 5 {
                _ = try await disconnect(record(user, on: nodeA, "\(index)"))
            } else {
                if index % 4 == 0 { _ = try await connect(record(user, on: nodeB, "\(index)-b")) }
                online.append(user)
            }
        }
        let paged = try await pageOwn(
            "onlineUsers", from: ClientID(rawValue: prefix), limit: 10, own: { isOwn($0.rawValue) }
        ) {
            try await onlineUsers(after: $0, limit: $1)
        }
        try expect(
            paged.items, online,
            "this check's online users, paged by 10 (5 of its 30 users went offline; some have 2 connections)")
        try expect(paged.pageSizes, [10, 10, 5], "how many of this check's 25 online users each page of 10 held")
        try expect(
            try await onlineUsers(after: online[4], limit: 3), Array(online[5..<8]),
            "onlineUsers after the 5th of this check's users, limit 3")
    }

    func reapsExpiredNodes() async throws {
        let expiring = try await node("expiring")
        let live = try await node("live")
        let gone = user("gone")
        let both = user("both")
        let stays = user("stays")
        let goneRecords = [record(gone, on: expiring, "gone-1"), record(gone, on: expiring, "gone-2")]
        for connection in goneRecords + [
            record(both, on: expiring, "both-e"), record(both, on: live, "both-l"),
            record(stays, on: live, "stays-l"),
        ] {
            _ = try await connect(connection)
        }
        let ttl = Duration.milliseconds(200)
        let clock = ContinuousClock()
        let start = clock.now
        try await renewLease(of: expiring, ttl: ttl)
        var reaped: [ConnectionRecord] = []
        let found = try await poll(every: .milliseconds(25), for: max(timeout, .seconds(5))) { () -> Bool? in
            let records = try await reapExpiredNodes()
            if !records.isEmpty, clock.now - start < ttl - .milliseconds(50) {
                throw failure(
                    "reapExpiredNodes() returned \(records.map(describe)) \(milliseconds(clock.now - start)) after the lease of expiring was renewed for \(milliseconds(ttl)), before it expired"
                )
            }
            reaped += records
            return reaped.contains { $0.client == gone } ? true : nil
        }
        guard found != nil else {
            let left = try await nodes(of: [gone])
            throw failure(
                "reapExpiredNodes(), polled for \(milliseconds(max(timeout, .seconds(5)))) after the lease of expiring (gone's only node) was renewed from 600 s to \(milliseconds(ttl)), never returned a record for gone; "
                    + (left.isEmpty
                        ? "gone is offline, so its connections were removed without returning it (unless another process's reap took them)"
                        : "gone is still connected on \(left[gone] ?? []) (renewLease must set the lease to end ttl from now, even when that is sooner than before)")
            )
        }
        try expect(
            reaped.map(\.client), [gone],
            "the users of this check reapExpiredNodes() returned (one record per user who went offline; both is still on live)"
        )
        guard let record = reaped.first, goneRecords.contains(record) else {
            throw failure(
                "reapExpiredNodes() returned \(reaped.map(describe)), not one of gone's records as connected (meta included): \(goneRecords.map(describe))"
            )
        }
        try expect(
            try await nodes(of: [gone, both, stays]), [both: [live], stays: [live]],
            "nodes(of: [gone, both, stays]) after expiring was reaped")
        try expect(try await ownOnlineUsers(), [both, stays], "this check's onlineUsers after expiring was reaped")
        try expect(try await reapExpiredNodes(), [], "this check's records from a second reapExpiredNodes()")
    }

    func removeNodeReturnsOffline() async throws {
        let leaving = try await node("leaving")
        let staying = try await node("staying")
        let gone = user("gone")
        let both = user("both")
        let stays = user("stays")
        let goneRecords = [record(gone, on: leaving, "gone-1"), record(gone, on: leaving, "gone-2")]
        for connection in goneRecords + [
            record(both, on: leaving, "both-1"), record(both, on: staying, "both-2"),
            record(stays, on: staying, "stays"),
        ] {
            _ = try await connect(connection)
        }
        let removed = try await removeNode(leaving)
        try expect(
            removed.map(\.client), [gone],
            "the users of this check removeNode(leaving) returned (one record per user who went offline)")
        guard let record = removed.first, goneRecords.contains(record) else {
            throw failure(
                "removeNode(leaving) returned \(removed.map(describe)), not one of gone's records as connected (meta included): \(goneRecords.map(describe))"
            )
        }
        try expect(
            try await nodes(of: [gone, both, stays]), [both: [staying], stays: [staying]],
            "nodes(of: [gone, both, stays]) after removeNode(leaving)")
        try expect(try await disconnect(goneRecords[1]), nil, "disconnect of a connection its node's removal removed")
        try expect(try await removeNode(leaving), [], "removeNode(leaving) a second time")
        try expect(
            try await removeNode(NodeID(rawValue: prefix + "-unknown")), [],
            "removeNode of a node that never had connections")
        try expect(try await connect(goneRecords[0]), 1, "connect of a record again after its node was removed")
    }

    func claimTokenOnce() async throws {
        let id = prefix + "-token"
        try expect(try await claimToken(id: id, ttl: .seconds(60)), true, "the first claim of a token id")
        try expect(try await claimToken(id: id, ttl: .seconds(60)), false, "a second claim of the same id")
        try expect(try await claimToken(id: id, ttl: .seconds(60)), false, "a third claim of the same id")
        try expect(
            try await claimToken(id: prefix + "-other-token", ttl: .seconds(60)), true, "the first claim of another id")
        // Any ttl is taken, however large or small (a directory clamps it; it never traps).
        for (index, ttl) in [Duration.seconds(Int64.max), .milliseconds(Int64.max), .seconds(-1), .zero].enumerated() {
            try expect(
                try await claimToken(id: prefix + "-ttl-token-\(index)", ttl: ttl), true,
                "the first claim with ttl \(ttl)")
        }
        try expect(
            try await claimToken(id: prefix + "-ttl-token-0", ttl: .seconds(60)), false,
            "a second claim of an id claimed with the largest ttl")
    }

    func claimTokenExpires() async throws {
        let id = prefix + "-token"
        let ttl = Duration.milliseconds(200)
        let clock = ContinuousClock()
        let start = clock.now
        try expect(try await claimToken(id: id, ttl: ttl), true, "the first claim of a token id")
        let again = try await poll(every: .milliseconds(25), for: max(timeout, .seconds(5))) { () -> Bool? in
            // Claimed again for long, so the check below does not depend on how fast this machine
            // answers (a second 200 ms claim could itself expire before the next call under load).
            guard try await claimToken(id: id, ttl: .seconds(60)) else { return nil }
            let elapsed = clock.now - start
            if elapsed < ttl - .milliseconds(50) {
                throw failure(
                    "claimToken returned true again \(milliseconds(elapsed)) after a claim with ttl \(milliseconds(ttl)), before the ttl passed"
                )
            }
            return true
        }
        guard again != nil else {
            throw failure(
                "claimToken never returned true again within \(milliseconds(max(timeout, .seconds(5)))) of a claim with ttl \(milliseconds(ttl)); an id may be claimed again once its ttl has passed"
            )
        }
        try expect(
            try await claimToken(id: id, ttl: .seconds(60)), false, "a claim right after the id was claimed again")
    }

    func concurrentConnectsAreAtomic() async throws {
        let nodeA = try await node("node-a")
        let nodeB = try await node("node-b")
        let alice = user("alice")
        let connections = (0..<20).map { record(alice, on: $0.isMultiple(of: 2) ? nodeA : nodeB, "\($0)") }
        let connected = try await concurrently(connections) { try await self.connect($0) }
        try expect(
            connected.map { $0 ?? -1 }.sorted(), Array(1...20),
            "the counts 20 concurrent connects of one user's 20 connections returned, sorted (-1 stands for nil)")
        let disconnected = try await concurrently(connections) { try await self.disconnect($0) }
        try expect(
            disconnected.map { $0 ?? -1 }.sorted(), Array(0..<20),
            "the counts 20 concurrent disconnects of those connections returned, sorted (-1 stands for nil)")

        let same = record(user("bob"), on: nodeA, "same")
        let counts = try await concurrently(Array(repeating: same, count: 20)) { try await self.connect($0) }
        try expect(
            counts.map { $0 ?? -1 }.sorted(), Array(repeating: -1, count: 19) + [1],
            "the counts 20 concurrent connects of one and the same record returned, sorted (-1 stands for nil; it is registered once)"
        )
    }

    /// Runs `operation` on every element at once, from separate tasks; returns the results.
    private func concurrently<Element: Sendable, Result: Sendable>(
        _ elements: [Element], _ operation: @escaping @Sendable (Element) async throws -> Result
    ) async throws -> [Result] {
        try await withThrowingTaskGroup(of: Result.self) { group in
            for element in elements { group.addTask { try await operation(element) } }
            var results: [Result] = []
            for try await result in group { results.append(result) }
            return results
        }
    }
}
