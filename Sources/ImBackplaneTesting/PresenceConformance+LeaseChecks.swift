import ImBackplane

/// The checks of what a node needs to find out that its registrations were lost, and to
/// restore them.
extension PresenceHarness {
    func renewLeaseTellsWhetherLive() async throws {
        let node = nodeWithoutLease("renewing")
        // The first lease is long, so the second call finds it live however slowly this machine
        // answers (a 300 ms lease could run out between two calls on a loaded CI machine); the
        // second sets the short lease whose running out is checked next.
        try expect(
            try await renewLease(of: node, ttl: .seconds(30)), false,
            "renewLease of a node that never had a lease")
        try expect(
            try await renewLease(of: node, ttl: .milliseconds(300)), true,
            "renewLease of a node whose lease (30 s) was renewed just before")
        let clock = ContinuousClock()
        let expired = clock.now.advanced(by: .milliseconds(500))
        try await clock.sleep(until: expired)
        try expect(
            try await renewLease(of: node, ttl: .seconds(600)), false,
            "renewLease of a node 500 ms after its lease of 300 ms (it ran out: the node may have been reaped)")
        try expect(try await renewLease(of: node, ttl: .seconds(600)), true, "renewLease of a node with a live lease")
        _ = try await removeNode(node)
        try expect(try await renewLease(of: node, ttl: .seconds(600)), false, "renewLease of a node that was removed")
    }

    func replaceConnectionsReconciles() async throws {
        let mine = try await node("mine")
        let other = try await node("other")
        let kept = user("kept")
        let stale = user("stale")
        let both = user("both")
        let added = user("added")
        let keptRecord = record(kept, on: mine, "kept")
        let staleRecord = record(stale, on: mine, "stale")
        let bothHere = record(both, on: mine, "both-mine")
        let bothThere = record(both, on: other, "both-other")
        let addedRecord = record(added, on: mine, "added")
        for connection in [keptRecord, staleRecord, bothHere, bothThere] { _ = try await connect(connection) }

        // `both` loses the connection on `mine` but keeps the one on `other`; a record of
        // another node in `live` is ignored.
        let foreign = record(user("foreign"), on: other, "foreign")
        let changes = try await replaceConnections(of: mine, with: [keptRecord, addedRecord, foreign])
        try expect(
            changes.online, [addedRecord],
            "the users replaceConnections(of: mine, with: [kept, added, foreign on other]) brought online (as registered, meta included)"
        )
        try expect(
            changes.offline, [staleRecord],
            "the users replaceConnections(of: mine, with: [kept, added, foreign on other]) took offline (both still has a connection on other)"
        )
        try expect(
            try await nodes(of: [kept, stale, both, added, user("foreign")]),
            [kept: [mine], both: [other], added: [mine]],
            "nodes(of:) after replaceConnections(of: mine, with: [kept, added, foreign on other])")
        try expect(try await connect(addedRecord), nil, "connect of a record replaceConnections registered")
        try expect(try await disconnect(staleRecord), nil, "disconnect of a record replaceConnections removed")
        try expect(
            try await replaceConnections(of: mine, with: [keptRecord, addedRecord]), PresenceChanges(),
            "a second replaceConnections with the same live connections")

        let emptied = try await replaceConnections(of: mine, with: [])
        try expect(emptied.online, [], "the users replaceConnections(of: mine, with: []) brought online")
        try expect(
            emptied.offline.map(\.client), [added, kept],
            "the users replaceConnections(of: mine, with: []) took offline")
        try expect(
            try await nodes(of: [kept, both, added]), [both: [other]],
            "nodes(of:) after replaceConnections(of: mine, with: [])")
    }
}
