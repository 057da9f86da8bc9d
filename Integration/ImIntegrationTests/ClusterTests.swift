import Foundation
import ImCore
import ImHelper
import ImTesting
import Synchronization
import Testing

/// The cluster suites, one after the other (each starts real processes; run side by side on a
/// small machine they would measure each other's load): ``ClusterTests`` and ``ClusterSoakTests``,
/// for every backplane in ``Backends/available``.
@Suite("Cluster", .enabled(if: Backends.anyAvailable), .serialized)
enum ClusterSuites {}

extension ClusterSuites {
    /// Three real `imserver` processes on one real backplane server, plus an in-process ImHelper,
    /// for every backplane in ``Backends/all``: delivery across nodes, and every fault a cluster
    /// meets (a node killed, paused past its lease, terminated under load; the backplane killed and
    /// restarted with and without its data, or hung). Each fault scenario counts what it sent
    /// against the receipts and the messages that arrived, and fails on any lie
    /// (``DeliveryLedger``). docs/reliability.md, *Cluster faults*, lists the scenarios.
    @Suite("Cluster of imserver processes, per backplane", .timeLimit(.minutes(2)))
    struct ClusterTests {
        // MARK: Delivery

        @Test(
            "P2P, channels and per-user events across three nodes, with a user on each transport",
            arguments: Backends.available)
        func deliveryAcrossNodes(_ row: BackendRow) async throws {
            try await ProcessCluster.with(row) { cluster in
                let events = try await EventRecorder.start(cluster.helper)
                defer { events.stop() }
                let alice1 = try await cluster.connect("alice", node: 0)
                let alice2 = try await cluster.connect("alice", node: 1)
                let bob = try await cluster.connect("bob", node: 1)
                let carol = try await cluster.connect("carol", node: 2)
                let dave = try await cluster.connectStream("dave", node: 2)

                var online: [String] = []
                for _ in 0..<4 { online.append(try await events.next(timeout: .seconds(10)).client.rawValue) }
                #expect(
                    online.sorted() == ["alice", "bob", "carol", "dave"],
                    "alice is announced once although on two nodes")

                let sent = try await cluster.helper.send(.text("to alice"), from: "carol", to: ["alice"], receipt: true)
                for tab in [alice1, alice2] {
                    try await tab.waitForMessage(sent.id)
                    #expect(tab.count(of: sent.id) == 1)
                }
                let receipt = try await carol.waitForReceipt(sent.id, to: "alice")
                #expect(receipt.status == "delivered")
                #expect(carol.receipts.count == 1, "one receipt although alice has two connections")
                try await cluster.helper.send(.text("to bob"), from: "alice", to: ["bob"])
                try await bob.waitForMessage(data: .string("to bob"))

                // Over an event stream on node 3, from a sender on nodes 1 and 2: delivered, then
                // acked by a post to the stream's session.
                let toDave = try await cluster.helper.send(.text("to dave"), from: "alice", to: ["dave"], receipt: true)
                try await dave.waitForMessage(toDave.id)
                #expect(try await alice1.waitForReceipt(toDave.id, to: "dave").status == "delivered")
                guard case .eventStream(let stream) = dave.link else { throw TestClientError.closed }
                #expect(try await stream.send(text: #"{"type":"ack","id":"\#(toDave.id)"}"#) == 202)
                try await waitUntil(timeout: .seconds(10)) {
                    alice1.receipts.contains { $0.id == toDave.id && $0.status == "acked" }
                }

                for user: ClientID in ["alice", "bob", "carol", "dave"] {
                    try await cluster.helper.join(user, channels: ["room"])
                }
                let id = try await cluster.helper.send(.text("hello room"), from: "bob", toChannel: "room")
                for client in [alice1, alice2, bob, carol, dave] { try await client.waitForMessage(id) }
                #expect(try await cluster.helper.stats(of: "room") == ChannelStats(members: 4, online: 4))
                #expect(dave.count(of: id) == 1)

                await alice1.close()
                await alice2.close()
                let offline = try await events.next(timeout: .seconds(10))
                #expect(offline.kind == .offline && offline.client == "alice")
                await dave.close()
                let daveLeft = try await events.next(timeout: .seconds(10))
                #expect(
                    daveLeft.kind == .offline && daveLeft.client == "dave", "a closed event stream is announced offline"
                )
                try await cluster.helper.send(.text("marker"), from: "x", to: ["bob"])
                try await bob.waitForMessage(data: .string("marker"))
            }
        }

        // MARK: Node faults

        @Test(
            "a node killed with SIGKILL: its users are reported offline within the lease; others unaffected",
            arguments: Backends.available)
        func nodeKilled(_ row: BackendRow) async throws {
            try await ProcessCluster.with(row, leaseTTL: .seconds(2)) { cluster in
                _ = try await cluster.connect("carol", node: 2)
                let bob = try await cluster.connect("bob", node: 1)
                let events = try await EventRecorder.start(cluster.helper)
                defer { events.stop() }
                try await cluster.nodes[2].kill()
                let offline = try await events.next(timeout: .seconds(10))
                #expect(offline.kind == .offline && offline.client == "carol" && offline.node == "node-3")
                #expect(try await !cluster.helper.isOnline("carol"))
                #expect(try await cluster.helper.isOnline("bob"))
                try await cluster.helper.send(.text("still here"), from: "x", to: ["bob"])
                try await bob.waitForMessage(data: .string("still here"))
            }
        }

        /// (a) Before the kill, a receipted stream to users on every node gets exactly one
        /// `delivered` per message and receiver, each for a message that arrived. After it, once the
        /// lease has run out, a user who was only on the dead node is `offline` (receipt and send
        /// result), a user also on a live node still gets everything, and each user of the dead node
        /// is announced offline exactly once.
        @Test(
            "SIGKILL of a node: receipts true before, offline after the lease, one offline event per user",
            arguments: Backends.available)
        func nodeKilledUnderReceipts(_ row: BackendRow) async throws {
            try await ProcessCluster.with(row, leaseTTL: .seconds(2)) { cluster in
                let sender = try await cluster.connect("sender", node: 0)
                let receivers = [
                    try await cluster.connect("r0", node: 0), try await cluster.connect("r1", node: 1),
                    try await cluster.connect("r2", node: 2), try await cluster.connect("r12", node: 1),
                    try await cluster.connect("r12", node: 2),
                ]
                let everyone: [ClientID] = ["r0", "r1", "r2", "r12"]
                let before = DeliveryLedger(sender: "sender")
                for index in 0..<50 { try await before.send(cluster.helper, "before \(index)", to: everyone) }
                await before.settle(sender: sender, receivers: receivers, strict: Set(everyone), timeout: .seconds(10))
                let audit = before.audit(sender: sender, receivers: receivers)
                #expect(audit.lies.isEmpty, "\(audit)")
                #expect(audit.missing.isEmpty, "\(audit)")
                for user in everyone {
                    #expect(audit.tally(user) == .init(addressed: 50, delivered: 50, received: 50), "\(user): \(audit)")
                }
                // `settle` waited for the connection whose node reports r12's receipts; the
                // other node's connection may still be reading the last messages.
                let twins = receivers.filter { $0.user == "r12" }
                _ = try? await waitUntil(timeout: .seconds(5)) { twins.allSatisfy { $0.counts.count == 50 } }
                for tab in twins {
                    #expect(tab.counts.count == 50, "each of r12's connections got every message")
                    #expect(tab.counts.values.allSatisfy { $0 == 1 }, "each once")
                }

                let events = try await EventLog.start(cluster.helper)
                defer { events.stop() }
                try await cluster.nodes[2].kill()
                try await events.waitFor(.offline, "r2", timeout: cluster.leaseTTL + .seconds(4))

                let after = DeliveryLedger(sender: "sender")
                let sent = try await after.send(cluster.helper, "after the kill", to: everyone)
                #expect(sent.offline == ["r2"], "the send result lists the dead node's user as offline")
                await after.settle(sender: sender, receivers: receivers, strict: Set(everyone), timeout: .seconds(10))
                let afterAudit = after.audit(sender: sender, receivers: receivers)
                #expect(afterAudit.lies.isEmpty, "\(afterAudit)")
                #expect(afterAudit.missing.isEmpty, "\(afterAudit)")
                #expect(afterAudit.tally("r2") == .init(addressed: 1, offline: 1), "\(afterAudit)")
                for user: ClientID in ["r0", "r1", "r12"] {
                    #expect(afterAudit.tally(user) == .init(addressed: 1, delivered: 1, received: 1), "\(afterAudit)")
                }
                #expect(try await !cluster.helper.isOnline("r2"))
                #expect(try await cluster.helper.isOnline("r12"), "r12 is still connected to node-2")

                // A marker from a live node: its events come after the reaping's.
                let marker = try await cluster.connect("marker", node: 1)
                await marker.close()
                try await events.waitFor(.offline, "marker", timeout: .seconds(10))
                #expect(events.count(.offline, "r2") == 1, "\(events.all)")
                for user: ClientID in ["r0", "r1", "r12"] {
                    #expect(events.count(.offline, user) == 0, "\(user) stayed online: \(events.all)")
                }
            }
        }

        /// (b) A node stopped (SIGSTOP) for three leases and resumed: its users may be announced
        /// offline meanwhile, but within a lease and 2 s of the resume they are online again, with
        /// an `online` event, and a receipted send reaches them.
        @Test(
            "SIGSTOP of a node past its lease, then SIGCONT: its users are online again", arguments: Backends.available)
        func nodePausedPastLease(_ row: BackendRow) async throws {
            try await ProcessCluster.with(row, leaseTTL: .seconds(2)) { cluster in
                let sender = try await cluster.connect("sender", node: 0)
                let receivers = [try await cluster.connect("r1", node: 1), try await cluster.connect("r2", node: 2)]
                let events = try await EventLog.start(cluster.helper)
                defer { events.stop() }

                let paused = ContinuousClock.now
                try cluster.nodes[2].pause()
                try await events.waitFor(.offline, "r2", timeout: cluster.leaseTTL + .seconds(4))
                // The fault: the node stays stopped for three leases.
                try await Task.sleep(until: paused + cluster.leaseTTL * 3, clock: .continuous)
                try cluster.nodes[2].resume()

                let comeback = cluster.leaseTTL + .seconds(2)
                let online =
                    (try? await waitUntil(timeout: comeback) { try await cluster.helper.isOnline("r2") }) != nil
                #expect(online, "r2, still connected to the resumed node, is online again within \(comeback)")
                let announced = (try? await events.waitFor(.online, "r2", timeout: .seconds(2))) != nil
                #expect(announced, "an online event for r2 after the resume: \(events.all)")
                #expect(receivers[1].isActive, "the client stayed connected through the pause")

                let ledger = DeliveryLedger(sender: "sender")
                try await ledger.send(cluster.helper, "after the resume", to: ["r1", "r2"])
                await ledger.settle(sender: sender, receivers: receivers, strict: ["r1", "r2"], timeout: .seconds(10))
                let audit = ledger.audit(sender: sender, receivers: receivers)
                #expect(audit.lies.isEmpty, "\(audit)")
                for user: ClientID in ["r1", "r2"] {
                    #expect(audit.tally(user) == .init(addressed: 1, delivered: 1, received: 1), "\(user): \(audit)")
                }
                let running = cluster.nodes.allSatisfy { $0.isRunning }
                #expect(running, "every node still runs")
            }
        }

        /// (c) SIGTERM of a node while a sender streams 200 receipted messages a second to users on
        /// it (two of them never answer the node's close frame) and on other nodes. No receipt lies:
        /// at most one receipt per message and receiver, `delivered` only for what arrived. Users on
        /// the other nodes get everything; once the node has exited, its users are `offline`.
        @Test("graceful SIGTERM of a node under a receipted stream: no receipt lies", arguments: Backends.available)
        func nodeTerminatedUnderStream(_ row: BackendRow) async throws {
            try await ProcessCluster.with(row, leaseTTL: .seconds(2)) { cluster in
                let sender = try await cluster.connect("sender", node: 0)
                var slow = TestClient.Options()
                slow.answersClose = false
                let receivers = [
                    try await cluster.connect("r0", node: 0), try await cluster.connect("r1", node: 1),
                    try await cluster.connect("slow-a", node: 2, options: slow),
                    try await cluster.connect("slow-b", node: 2, options: slow),
                    try await cluster.connect("quick", node: 2),
                ]
                let onTerminated: [ClientID] = ["slow-a", "slow-b", "quick"]
                let everyone: [ClientID] = ["r0", "r1"] + onTerminated
                let ledger = DeliveryLedger(sender: "sender")
                let stop = Flag()
                let stream = Task {
                    var next = ContinuousClock.now
                    var index = 0
                    while !stop.isSet {
                        index += 1
                        _ = try? await ledger.send(cluster.helper, "m\(index)", to: everyone)
                        next += .milliseconds(5)  // 200 messages a second
                        try? await Task.sleep(until: next, clock: .continuous)
                    }
                }
                try await waitUntil(timeout: .seconds(10)) { ledger.all.count >= 100 }
                let status = try await cluster.nodes[2].stop(timeout: .seconds(15))
                let exited = ContinuousClock.now
                try await waitUntil(timeout: .seconds(10)) { ledger.all.count(where: { $0.started > exited }) >= 200 }
                stop.set()
                await stream.value
                // Offline receipts from the helper travel in order: once the marker's has come, all have.
                let marker = try await ledger.send(cluster.helper, "marker", to: everyone)
                try await sender.waitForReceipt(marker.id, to: "quick")
                await ledger.settle(sender: sender, receivers: receivers, strict: ["r0", "r1"], timeout: .seconds(10))

                #expect(status == 0, "the node exits 0 after a graceful shutdown")
                for client in receivers where client.node == 2 {
                    #expect(client.closeCode == 1001, "\(client.user) got 1001 going away")
                }
                #expect(ledger.failures.isEmpty, "\(ledger.failures.prefix(3))")
                let audit = ledger.audit(sender: sender, receivers: receivers)
                #expect(audit.lies.isEmpty, "\(audit)")
                for user: ClientID in ["r0", "r1"] {
                    let tally = audit.tally(user)
                    #expect(
                        tally.delivered == tally.addressed && tally.received == tally.addressed, "\(user): \(audit)")
                }
                for user in onTerminated {
                    let tally = audit.tally(user)
                    #expect(tally.delivered <= tally.received, "\(user): \(tally)")
                }
                let afterExit = ledger.all.filter { $0.started > exited }
                let receipts = Dictionary(
                    sender.receipts.filter { $0.status != "acked" }.map {
                        (Audit.Key(id: $0.id, to: $0.to), [$0.status])
                    },
                    uniquingKeysWith: +)
                var wrong: [String] = []
                for send in afterExit {
                    for user in onTerminated {
                        let statuses = receipts[Audit.Key(id: send.id, to: user)] ?? []
                        if statuses != ["offline"] || !send.offline.contains(user) {
                            wrong.append(
                                "\(send.id)→\(user): \(statuses), in send result: \(send.offline.contains(user))")
                        }
                    }
                }
                #expect(
                    wrong.isEmpty,
                    "after the node exited its users are offline: \(wrong.count) not, e.g. \(wrong.prefix(3))")
            }
        }

        // MARK: Backplane faults

        @Test(
            "backplane server restarted: health goes down and up, presence is whole again, delivery resumes",
            arguments: Backends.available)
        func backendRestarted(_ row: BackendRow) async throws {
            try await ProcessCluster.with(row) { cluster in
                let alice = try await cluster.connect("alice", node: 0)
                let bob = try await cluster.connect("bob", node: 1)
                #expect(await cluster.health(node: 0) == 200)

                try await cluster.backend.kill()
                try await waitUntil(timeout: .seconds(10)) { await cluster.health(node: 0) == 503 }
                try await waitUntil(timeout: .seconds(10)) {
                    await cluster.metrics(node: 0).contains("imserver_backplane_up 0.0")
                }
                #expect(alice.isActive && bob.isActive, "clients stay connected while the backplane is away")

                try await cluster.backend.restart()
                try await cluster.waitForHealth(200, timeout: .seconds(20))
                try await cluster.waitForOnline(["alice", "bob"], timeout: .seconds(20))
                // The metric is sampled every 250 ms: presence may be whole (a lease renewal
                // reconciles) before the sampler has seen the backplane up again.
                try await waitUntil(timeout: .seconds(5)) {
                    await cluster.metrics(node: 0).contains("imserver_backplane_up 1.0")
                }
                try await waitUntil(timeout: .seconds(20)) { cluster.helper.backplane.health.isUp }
                try await cluster.helper.send(.text("after restart"), from: "x", to: ["alice", "bob"])
                try await alice.waitForMessage(data: .string("after restart"))
                try await bob.waitForMessage(data: .string("after restart"))
            }
        }

        /// (d) The backplane server killed and restarted with its data: every node's health is 503
        /// within 3 s and 200 within 10 s of the restart, clients stay connected, presence is the
        /// connected set, memberships are kept, delivery resumes.
        @Test(
            "backplane killed and restarted WITH persistence: health follows, presence and memberships whole",
            arguments: Backends.available)
        func backendRestartedWithPersistence(_ row: BackendRow) async throws {
            try await ProcessCluster.with(row, persistent: true) { cluster in
                let sender = try await cluster.connect("sender", node: 0)
                let receivers = [
                    try await cluster.connect("alice", node: 0), try await cluster.connect("bob", node: 1),
                    try await cluster.connect("carol", node: 2),
                ]
                let members: [ClientID] = ["alice", "bob", "carol"]
                for user in members { try await cluster.helper.join(user, channels: ["room"]) }

                try await cluster.backend.kill()
                let down = (try? await cluster.waitForHealth(503, timeout: .seconds(3))) != nil
                #expect(down, "every node's /health says 503 within 3 s of the kill")
                let open = receivers.allSatisfy { $0.isActive } && sender.isActive
                #expect(open, "clients stay connected")

                try await cluster.backend.restart()
                let up = (try? await cluster.waitForHealth(200, timeout: .seconds(10))) != nil
                #expect(up, "every node's /health says 200 within 10 s of the restart")
                try await cluster.waitForOnline(Set(members + ["sender"]), timeout: cluster.leaseTTL + .seconds(3))
                try await waitUntil(timeout: .seconds(10)) { cluster.helper.backplane.health.isUp }

                try await expectDelivery(cluster, sender: sender, receivers: receivers)
                #expect(try await cluster.helper.stats(of: "room") == ChannelStats(members: 3, online: 3))
                #expect(try await cluster.helper.channels(of: "alice") == ["room"])
                let id = try await cluster.helper.send(.text("room after restart"), from: "sender", toChannel: "room")
                for client in receivers { try await client.waitForMessage(id) }
            }
        }

        /// (e) The backplane server killed and restarted empty: within a lease and 3 s presence is
        /// the connected set again and delivery resumes. Memberships are lost, and the nodes hold to
        /// that: a channel message reaches none of the users who were members (no half state where
        /// the channel reports 0 members and still delivers). A connect token used before the
        /// restart is refused when replayed on the same node (the node remembers its claims).
        @Test(
            "backplane killed and restarted WITHOUT persistence: presence rebuilt, memberships gone, tokens stay used",
            arguments: Backends.available)
        func backendRestartedWithoutPersistence(_ row: BackendRow) async throws {
            try await ProcessCluster.with(row, persistent: false) { cluster in
                let sender = try await cluster.connect("sender", node: 0)
                let receivers = [
                    try await cluster.connect("alice", node: 0), try await cluster.connect("bob", node: 1),
                    try await cluster.connect("carol", node: 2),
                ]
                let members: [ClientID] = ["alice", "bob", "carol"]
                for user in members { try await cluster.helper.join(user, channels: ["room"]) }
                let used = try await cluster.url(for: "dave", node: 0)
                let dave = try await cluster.connect("dave", node: 0, url: used)
                await dave.close()
                try await waitUntil(timeout: .seconds(5)) { try await !cluster.helper.isOnline("dave") }

                try await cluster.backend.kill()
                try await cluster.waitForHealth(503, timeout: .seconds(10))
                try await cluster.backend.restart()
                let bound = cluster.leaseTTL + .seconds(3)
                let whole = (try? await cluster.waitForOnline(Set(members + ["sender"]), timeout: bound)) != nil
                let present = try await cluster.onlineUsers()
                #expect(whole, "presence is the connected set within \(bound) of the restart: \(present.sorted())")
                try await cluster.waitForHealth(200, timeout: .seconds(10))
                try await waitUntil(timeout: .seconds(10)) { cluster.helper.backplane.health.isUp }

                try await expectDelivery(cluster, sender: sender, receivers: receivers)

                #expect(try await cluster.helper.stats(of: "room") == ChannelStats(members: 0, online: 0))
                #expect(try await cluster.helper.channels(of: "alice") == [])
                // Members who joined after the restart, one per node: when they have the channel
                // message, every node has handled it.
                var probes: [RecordingClient] = []
                for node in 0..<3 {
                    let probe = try await cluster.connect(ClientID(rawValue: "probe\(node)"), node: node)
                    try await cluster.helper.join(probe.user, channels: ["room"])
                    probes.append(probe)
                }
                let id = try await cluster.helper.send(.text("room after restart"), from: "sender", toChannel: "room")
                for probe in probes { try await probe.waitForMessage(id) }
                try await expectDelivery(cluster, sender: sender, receivers: receivers)
                for client in receivers {
                    #expect(
                        !client.received(id), "\(client.user)'s membership is gone, yet the channel message reached it")
                }

                do {
                    let replayed = try await TestClient.connect(to: used)
                    await replayed.close()
                    Issue.record("a token used before the restart was accepted again on the same node")
                } catch TestClientError.refused(let status, let reason) {
                    #expect(status == 401 && reason == "token was already used", "\(status) \(reason)")
                }
            }
        }

        /// (f) The backplane server hung (SIGSTOP): every node's health is 503 within 3 s (a round
        /// trip, not a TCP connect), a send fails with a backplane error within the command timeout
        /// instead of hanging; after SIGCONT health is 200, presence whole, delivery resumes, and
        /// every node is still running.
        @Test(
            "backplane hung (SIGSTOP): health 503, sends fail fast, all well after SIGCONT",
            arguments: Backends.available)
        func backendHung(_ row: BackendRow) async throws {
            try await ProcessCluster.with(row) { cluster in
                let sender = try await cluster.connect("sender", node: 0)
                let receivers = [
                    try await cluster.connect("alice", node: 0), try await cluster.connect("bob", node: 1),
                    try await cluster.connect("carol", node: 2),
                ]
                try cluster.backend.pause()
                let down = (try? await cluster.waitForHealth(503, timeout: .seconds(3))) != nil
                #expect(down, "every node's /health says 503 within 3 s of the hang")

                let commandTimeout = Duration.seconds(1)
                let started = ContinuousClock.now
                let outcome = await Outcome.of(within: commandTimeout * 5) {
                    try await cluster.helper.send(.text("into the void"), from: "sender", to: ["bob"], receipt: true)
                }
                let elapsed = ContinuousClock.now - started
                switch outcome {
                case .returned(let result):
                    Issue.record("a send to a hung backplane returned \(result)")
                case .threw(let error):
                    #expect(error is BackplaneError, "a backplane error, not \(type(of: error)): \(error)")
                    #expect(elapsed <= commandTimeout + .seconds(1), "failed after \(elapsed)")
                case .hung:
                    Issue.record("a send to a hung backplane did not return within \(commandTimeout * 5)")
                }

                try cluster.backend.resume()
                let up = (try? await cluster.waitForHealth(200, timeout: .seconds(10))) != nil
                #expect(up, "every node's /health says 200 within 10 s of SIGCONT")
                let running = cluster.nodes.allSatisfy { $0.isRunning }
                #expect(running, "no node crashed")
                try await waitUntil(timeout: .seconds(10)) { cluster.helper.backplane.health.isUp }
                try await cluster.waitForOnline(
                    ["sender", "alice", "bob", "carol"], timeout: cluster.leaseTTL + .seconds(3))
                try await expectDelivery(cluster, sender: sender, receivers: receivers)
            }
        }

        /// (g) Clients close while the backplane server is hung, so their nodes cannot remove them
        /// from presence: after it resumes, the closed users are offline again within a lease and
        /// 3 s (no ghost stays online), and the users still connected stay online.
        @Test("clients closed while the backplane hangs leave no ghost in presence", arguments: Backends.available)
        func noGhostAfterFailedDisconnect(_ row: BackendRow) async throws {
            try await ProcessCluster.with(row) { cluster in
                let staying = [
                    try await cluster.connect("stay0", node: 0), try await cluster.connect("stay1", node: 1),
                ]
                var leaving: [RecordingClient] = []
                for node in 0..<3 {
                    leaving.append(try await cluster.connect(ClientID(rawValue: "gone\(node)"), node: node))
                }
                try await cluster.waitForOnline(Set((staying + leaving).map(\.user)), timeout: .seconds(5))

                try cluster.backend.pause()
                for client in leaving {
                    #expect(
                        await client.close(), "the node closes \(client.user) without the backplane")
                }
                // The fault: the hang lasts two command timeouts past the closes, so every attempt to
                // remove them from presence has failed.
                try await Task.sleep(for: .seconds(2))
                try cluster.backend.resume()

                let bound = cluster.leaseTTL + .seconds(3)
                let clean = (try? await cluster.waitForOnline(Set(staying.map(\.user)), timeout: bound)) != nil
                let present = try await cluster.onlineUsers()
                #expect(clean, "online within \(bound) of the resume: \(present.sorted())")
                let open = staying.allSatisfy { $0.isActive }
                #expect(open, "the clients that stayed are still connected")
                try await waitUntil(timeout: .seconds(10)) { cluster.helper.backplane.health.isUp }
                try await expectDelivery(cluster, sender: staying[0], receivers: [staying[1]])
            }
        }

        // MARK: Helpers

        /// Sends one receipted message from `sender` to every receiver and expects exactly one
        /// `delivered` each, for a message that arrived once.
        private func expectDelivery(
            _ cluster: ProcessCluster, sender: RecordingClient, receivers: [RecordingClient],
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let ledger = DeliveryLedger(sender: sender.user)
            let users = Array(Set(receivers.map(\.user))).sorted()
            try await ledger.send(cluster.helper, "delivery check", to: users)
            await ledger.settle(sender: sender, receivers: receivers, strict: Set(users), timeout: .seconds(10))
            let audit = ledger.audit(sender: sender, receivers: receivers)
            #expect(audit.lies.isEmpty, "\(audit)", sourceLocation: sourceLocation)
            for user in users {
                #expect(
                    audit.tally(user) == .init(addressed: 1, delivered: 1, received: 1), "\(user): \(audit)",
                    sourceLocation: sourceLocation)
            }
        }
    }
}

/// A flag one task sets and another reads.
final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// How a call that may hang ended.
enum Outcome<Value: Sendable>: Sendable {
    case returned(Value)
    case threw(any Error)
    case hung

    /// Runs `body` in a task of its own and waits `limit` for it; a call still running then is
    /// `hung` (and cancelled).
    static func of(within limit: Duration, _ body: @escaping @Sendable () async throws -> Value) async -> Outcome {
        let box = OutcomeBox<Value>()
        let task = Task {
            do {
                let value = try await body()
                box.set(.returned(value))
            } catch {
                box.set(.threw(error))
            }
        }
        _ = try? await waitUntil(timeout: limit) { box.value != nil }
        guard let outcome = box.value else {
            task.cancel()
            return .hung
        }
        return outcome
    }
}

private final class OutcomeBox<Value: Sendable>: Sendable {
    private let outcome = Mutex<Outcome<Value>?>(nil)
    var value: Outcome<Value>? { outcome.withLock { $0 } }
    func set(_ value: Outcome<Value>) { outcome.withLock { $0 = value } }
}
