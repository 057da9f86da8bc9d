import ImBackplane

/// The bodies of the ``PresenceConformance`` checks about the directory's lifecycle: calls
/// before `run()` and a backend restart.
extension PresenceHarness {
    /// Before `run()`: each call must return or throw a `BackplaneError` within the timeout.
    func callsBeforeRun() async throws {
        let presence = self.presence
        let node = NodeID(rawValue: prefix + "-early-node")
        let early = record(user("early"), on: node, "early")
        let token = prefix + "-early-token"
        _ = try await beforeRun("nodes(of: [early])", within: timeout) { try await presence.nodes(of: [early.client]) }
        _ = try await beforeRun("renewLease(of: early-node, ttl: 600 s)", within: timeout) {
            try await presence.renewLease(of: node, ttl: .seconds(600))
        }
        _ = try await beforeRun("connect(\(describe(early)))", within: timeout) { try await presence.connect(early) }
        _ = try await beforeRun("claimToken(id: early-token, ttl: 60 s)", within: timeout) {
            try await presence.claimToken(id: token, ttl: .seconds(60))
        }
        _ = try await beforeRun("removeNode(early-node)", within: timeout) { try await presence.removeNode(node) }
    }

    /// Once `run()` is up: a connect/disconnect round trip works.
    func callsAfterRun() async throws {
        let node = try await node("node-a")
        let alice = user("alice")
        let connection = record(alice, on: node, "alice-1")
        try expect(try await connect(connection), 1, "connect of alice's first connection once run() is up")
        try expect(try await nodes(of: [alice]), [alice: [node]], "nodes(of: [alice]) once run() is up")
        try expect(try await disconnect(connection), 0, "disconnect of alice's only connection")
    }

    func survivesBackendRestart() async throws {
        guard let restartBackend else { return }
        let nodeA = try await node("node-a")
        _ = try await connect(record(user("before"), on: nodeA, "before"))
        do {
            try await restartBackend()
        } catch {
            throw failure("restartBackend threw \(error): the backend could not be restarted")
        }
        let bob = user("bob")
        let connection = record(bob, on: nodeA, "bob-1")
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: reconnectTimeout)
        var lastError: String?
        var connected = false
        while clock.now < deadline {
            if try await tolerating(
                "connect(\(describe(connection)))", lastError: &lastError,
                {
                    try await presence.connect(connection)
                }) != nil
            {
                connected = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        guard connected else {
            throw failure(
                "calls did not work again within \(reconnectTimeout) of the backend restart"
                    + (lastError.map { "; last failure: \($0)" } ?? ""))
        }
        try expect(try await nodes(of: [bob]), [bob: [nodeA]], "nodes(of: [bob]) after the restart")
        try expect(
            try await claimToken(id: prefix + "-after-restart", ttl: .seconds(60)), true,
            "claimToken of a fresh id after the restart")
        let up = try await poll(for: reconnectTimeout) { presence.health.isUp ? true : nil }
        guard up != nil else {
            throw failure(
                "health is still \"\(presence.health)\" \(reconnectTimeout) after the restart, although calls work again"
            )
        }
    }
}
