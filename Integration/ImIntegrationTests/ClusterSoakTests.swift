import Foundation
import ImCore
import ImHelper
import ImTesting
import Synchronization
import Testing

extension ClusterSuites {
    /// Three nodes on one backplane server for `IM_SOAK_SECONDS` (20 s by default, so CI stays
    /// short; docs/reliability.md gives the 10-minute command): clients connect and close all
    /// along (some joining and leaving a channel), a sender streams receipted P2P messages to
    /// steady users and to whichever client just connected, another sends to the channel. At the
    /// end: no message lost or doubled for the steady users, no receipt lie for anyone, presence is
    /// exactly the connected set, nothing is left in the backend once everyone closed, and each
    /// node's RSS is within ``rssBound`` of what it was after the warm-up.
    @Suite("Soak: three nodes, clients coming and going, messages flowing")
    struct ClusterSoakTests {
        /// How long the load runs after the warm-up.
        static var duration: Duration {
            let seconds = ProcessInfo.processInfo.environment["IM_SOAK_SECONDS"].flatMap(Double.init) ?? 20
            return .milliseconds(Int64(max(seconds, 1) * 1000))
        }

        /// The warm-up before the RSS baseline: a tenth of the run, from 5 s to 60 s.
        static var warmUp: Duration { min(max(duration / 10, .seconds(5)), .seconds(60)) }

        /// How much a node's RSS may grow from the end of the warm-up to the end of the run.
        static let rssBound = 16 << 20

        /// Clients connecting and closing at once.
        static let churners = 4

        @Test(
            "clients connect and close, messages flow: presence, backend, receipts and RSS end clean",
            .timeLimit(.minutes(Int(((duration + warmUp) / .seconds(60)).rounded(.up)) + 2)),
            arguments: Backends.available)
        func soak(_ row: BackendRow) async throws {
            try await ProcessCluster.with(row) { cluster in
                let sender = try await cluster.connect("soak-sender", node: 0)
                var steady: [RecordingClient] = []
                for node in 0..<3 {
                    let client = try await cluster.connect(ClientID(rawValue: "steady\(node)"), node: node)
                    try await cluster.helper.join(client.user, channels: ["soak-room"])
                    steady.append(client)
                }
                let steadyUsers = steady.map(\.user)
                let ledger = DeliveryLedger(sender: sender.user)
                let load = SoakLoad()
                let warmEnd = ContinuousClock.now + Self.warmUp
                let end = warmEnd + Self.duration

                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<Self.churners {
                        group.addTask { try await Self.churn(worker: worker, cluster: cluster, load: load, until: end) }
                    }
                    group.addTask {
                        // Receipted P2P, 50 a second, to the steady users and the newest client.
                        var next = ContinuousClock.now
                        var index = 0
                        while ContinuousClock.now < end {
                            index += 1
                            let newest = load.newest.map { [$0] } ?? []
                            do {
                                try await ledger.send(cluster.helper, "p2p \(index)", to: steadyUsers + newest)
                            } catch {
                                load.fail("send \(index): \(error)")
                            }
                            next += .milliseconds(20)
                            try await Task.sleep(until: next, clock: .continuous)
                        }
                    }
                    group.addTask {
                        // The channel, 10 a second.
                        var next = ContinuousClock.now
                        var index = 0
                        while ContinuousClock.now < end {
                            index += 1
                            do {
                                let id = try await cluster.helper.send(
                                    .text("room \(index)"), from: "soak-sender", toChannel: "soak-room")
                                load.sentToChannel(id)
                            } catch {
                                load.fail("channel send \(index): \(error)")
                            }
                            next += .milliseconds(100)
                            try await Task.sleep(until: next, clock: .continuous)
                        }
                    }
                    group.addTask {
                        try await Task.sleep(until: warmEnd, clock: .continuous)
                        load.baseline = cluster.nodes.map { $0.residentBytes ?? 0 }
                    }
                    try await group.waitForAll()
                }

                // Every client the churners opened has closed. The last receipts and messages land.
                let everyone = steady + load.closed
                let users = Set(everyone.map(\.user))
                await ledger.settle(sender: sender, receivers: everyone, strict: users, timeout: .seconds(15))
                let audit = ledger.audit(sender: sender, receivers: everyone)
                let sends = ledger.all.count
                print(
                    "soak \(row): \(sends) receipted sends, \(load.channelIDs.count) channel messages, "
                        + "\(load.closed.count) connections opened and closed in \(Self.warmUp + Self.duration)")

                #expect(load.failures.isEmpty, "\(load.failures.prefix(5))")
                #expect(audit.lies.isEmpty, "\(audit.lies.count) lies, e.g. \(audit.lies.prefix(5))")
                #expect(
                    audit.missing.isEmpty, "\(audit.missing.count) without receipt, e.g. \(audit.missing.prefix(5))")
                for user in steadyUsers {
                    let tally = audit.tally(user)
                    #expect(
                        tally.addressed == sends && tally.delivered == sends && tally.received == sends,
                        "\(user): \(tally)")
                }
                let channelIDs = load.channelIDs
                for client in steady {
                    let counts = client.counts
                    let lost = channelIDs.filter { counts[$0] == nil }
                    let doubled = channelIDs.filter { (counts[$0] ?? 0) > 1 }
                    #expect(
                        lost.isEmpty && doubled.isEmpty, "\(client.user): \(lost.count) lost, \(doubled.count) doubled")
                }
                let odd = everyone.flatMap { $0.oddFrames }
                #expect(odd.isEmpty, "frames that are no message, receipt, pong or ready: \(odd.prefix(3))")

                let connected = Set(steadyUsers + [sender.user])
                let whole = (try? await cluster.waitForOnline(connected, timeout: .seconds(10))) != nil
                let present = try await cluster.onlineUsers()
                #expect(
                    whole, "presence is the connected set: \(present.subtracting(connected).sorted().prefix(10)) extra")

                // The count is live: while they are connected it holds at least one entry each.
                let held = try await cluster.backend.leftovers()
                #expect(held >= connected.count, "\(held) entries for \(connected.count) connected users")
                for client in steady + [sender] { await client.close() }
                let empty =
                    (try? await waitUntil(timeout: .seconds(10)) { try await cluster.backend.leftovers() == 0 }) != nil
                let left = try await cluster.backend.leftovers()
                #expect(empty, "the backend holds nothing for connections once all closed: \(left) entries left")

                let before = load.baseline
                for (index, node) in cluster.nodes.enumerated() {
                    let now = try #require(node.residentBytes, "node \(index) is not running")
                    let base = before.indices.contains(index) ? before[index] : 0
                    print("soak \(row): node-\(index + 1) RSS \(mib(base)) after warm-up, \(mib(now)) at the end")
                    #expect(now <= base + Self.rssBound, "node-\(index + 1): \(mib(base)) → \(mib(now))")
                }
            }
        }

        /// One churner: connects a new user to the nodes in turn, stays a moment (a third of them
        /// join the channel meanwhile and leave it again), closes like a browser, and again.
        private static func churn(
            worker: Int, cluster: ProcessCluster, load: SoakLoad, until end: ContinuousClock.Instant
        )
            async throws
        {
            var generator = SeededGenerator(seed: UInt64(worker) + 1)
            var generation = 0
            while ContinuousClock.now < end {
                generation += 1
                let user = ClientID(rawValue: "churn\(worker)-\(generation)")
                let client: RecordingClient
                do {
                    client = try await cluster.connect(user, node: (worker + generation) % cluster.nodes.count)
                } catch {
                    load.fail("connect \(user): \(error)")
                    continue
                }
                let joins = generation % 3 == 0
                if joins { try await cluster.helper.join(user, channels: ["soak-room"]) }
                load.opened(user)
                try await Task.sleep(for: .milliseconds(Int.random(in: 50...400, using: &generator)))
                if joins { try await cluster.helper.leave(user, channels: ["soak-room"]) }
                await client.close()
                load.closed(client)
            }
        }
    }
}

/// What the soak's workers share.
private final class SoakLoad: Sendable {
    private struct State {
        var newest: ClientID?
        var closed: [RecordingClient] = []
        var channelIDs: [String] = []
        var failures: [String] = []
        var baseline: [Int] = []
    }

    private let state = Mutex(State())

    /// The client that connected last, while it is connected.
    var newest: ClientID? { state.withLock { $0.newest } }
    var closed: [RecordingClient] { state.withLock { $0.closed } }
    var channelIDs: [String] { state.withLock { $0.channelIDs } }
    var failures: [String] { state.withLock { $0.failures } }

    /// Each node's RSS at the end of the warm-up.
    var baseline: [Int] {
        get { state.withLock { $0.baseline } }
        set { state.withLock { $0.baseline = newValue } }
    }

    func opened(_ user: ClientID) { state.withLock { $0.newest = user } }

    func closed(_ client: RecordingClient) {
        state.withLock { state in
            state.closed.append(client)
            if state.newest == client.user { state.newest = nil }
        }
    }

    func sentToChannel(_ id: String) { state.withLock { $0.channelIDs.append(id) } }
    func fail(_ reason: String) { state.withLock { $0.failures.append(reason) } }
}
