import NIOPosix
import Synchronization

/// Opens many authenticated WebSockets, measures the handshake rate and the server's memory
/// per connection, holds them, then closes them.
struct ConnectionsScenario {
    var targets: Targets
    var client: ClientOptions
    var count: Int
    var hold: Double
    /// Server processes whose memory is read (summed).
    var pids: [Int32]
    /// After holding, broadcast one message through the API and check every connection got it.
    var broadcast = false

    /// Runs the scenario and prints its result line; returns the exit code.
    func run() async throws -> Int32 {
        guard !(broadcast && targets.peer != nil) else {
            throw BenchError.invalidArgument("--broadcast goes through ImServer's API: not with --peer")
        }
        let spec = try client.spec(targets: targets, prefix: "bench-", count: count, stride: broadcast ? 1 : 0)
        let fleet = try client.makeFleet(spec)
        let rssBefore = ProcessResources.residentKiB(of: pids)
        let phase = PhaseClock()

        let mint = try await Progress.reporting(
            { _ in
                guard let snapshot = try? await fleet.snapshot() else { return nil }
                return "[\(phase.elapsed)] minting: \(snapshot.minted)/\(count) connect URLs"
            }, while: { try await fleet.mint() })
        let mintSeconds = MonotonicClock.seconds(from: mint.start, to: mint.end)
        Console.log(
            "minted \(mint.outcome.ok)/\(count) URLs in \(format(mintSeconds, decimals: 2)) s"
                + (mint.outcome.failed > 0 ? ", \(mint.outcome.failed) failed" : ""))
        report(mint.outcome.failures, title: "mint failures")

        let previous = LastValue()
        let connected = try await Progress.reporting(
            { elapsed in
                guard let snapshot = try? await fleet.snapshot() else { return nil }
                let gained = snapshot.open - previous.exchange(snapshot.open)
                return "[\(phase.elapsed)] connecting: open=\(snapshot.open)/\(count) failed=\(snapshot.failed)"
                    + " (+\(gained)/s)" + memory(pids)
            }, while: { try await fleet.connect() })
        Console.log(
            "connected \(connected.ok)/\(count) in "
                + "\(format(MonotonicClock.seconds(from: connected.firstStart, to: connected.lastReady), decimals: 2)) s: "
                + "\(format(connected.handshakesPerSecond, decimals: 0)) handshakes/s")
        report(connected.failures, title: "connection failures")

        let held = max(hold, pids.isEmpty ? 0 : 1)
        var dropped = 0
        if held > 0 {
            try await Progress.reporting(
                { _ in
                    guard let snapshot = try? await fleet.snapshot() else { return nil }
                    return "[\(phase.elapsed)] holding: open=\(snapshot.open) dropped=\(snapshot.dropped)"
                        + memory(pids)
                }, while: { try await Task.sleep(for: .seconds(held)) })
            dropped = (try? await fleet.snapshot().dropped) ?? 0
        }
        let rssAfter = ProcessResources.residentKiB(of: pids)
        let reach = broadcast ? try await broadcastReach(fleet, expected: connected.ok) : nil
        await fleet.close()

        var result = ResultLine(scenario: "connections")
        result.add("count", count)
        result.add("ok", connected.ok)
        result.add("failed", connected.failed)
        result.add("handshakes_per_s", connected.handshakesPerSecond, decimals: 1)
        result.add("rss_before_kb", rssBefore)
        result.add("rss_after_kb", rssAfter)
        if let rssBefore, let rssAfter, connected.ok > 0 {
            result.add("kb_per_conn", Double(rssAfter - rssBefore) / Double(connected.ok), decimals: 2)
        } else {
            result.add("kb_per_conn", "-")
        }
        result.add("mints_per_s", mintSeconds > 0 ? Double(mint.outcome.ok) / mintSeconds : 0, decimals: 1)
        result.add("dropped", dropped)
        if let reach {
            result.add("broadcast_delivered", reach.delivered)
            result.add("broadcast_lost", reach.lost)
            result.add("broadcast_dup", reach.duplicates)
            result.add("broadcast_p50_ms", LatencyHistogram.milliseconds(reach.histogram.histogram, percentile: 50))
            result.add("broadcast_max_ms", Double(reach.histogram.maxRecorded) / 1000)
        }
        Console.output(result.text)
        let reached = reach.map { $0.lost == 0 && $0.duplicates == 0 && $0.delivered == connected.ok } ?? true
        return connected.failed == 0 && connected.ok == count && dropped == 0 && reached ? 0 : 1
    }

    /// Sends one broadcast (`seq` 0) through the API and waits until every connection has it
    /// (or 30 s passed); returns what arrived.
    private func broadcastReach(_ fleet: any Fleet, expected: Int) async throws -> DeliveryReport {
        let session = ServerAPI.Session(api: targets.api, loop: MultiThreadedEventLoopGroup.singleton.next())
        defer { session.close() }
        let reply = try await session.request(
            node: 0, .POST, "/v1/broadcasts",
            json: #"{"data":{"seq":0,"t":\#(MonotonicClock.now())}}"#)
        guard reply.isSuccess else {
            throw BenchError.server("broadcast: HTTP \(reply.status) \(reply.text.prefix(120))")
        }
        let deadline = MonotonicClock.now() + 30_000_000_000
        while MonotonicClock.now() < deadline, try await fleet.snapshot().delivered < expected {
            try await Task.sleep(for: .milliseconds(20))
        }
        let reach = try await fleet.finish(sent: 1, failed: [])
        Console.log("broadcast reached \(reach.delivered)/\(expected) connections")
        return reach
    }
}

/// ` rss=<KiB>` of the server processes, or nothing without `--pid`.
func memory(_ pids: [Int32]) -> String {
    ProcessResources.residentKiB(of: pids).map { " server_rss_kb=\($0)" } ?? ""
}

/// Prints failures by reason, most frequent first.
func report(_ failures: FailureReasons, title: String) {
    guard failures.total > 0 else { return }
    Console.log("\(title):")
    for (reason, count) in failures.sorted.prefix(12) { Console.log("  \(count) × \(reason)") }
}

/// A number a progress closure remembers from one second to the next.
final class LastValue: Sendable {
    private let value = Mutex(0)

    /// Stores `new` and returns the value it replaced.
    func exchange(_ new: Int) -> Int {
        value.withLock { value in
            defer { value = new }
            return value
        }
    }
}

/// Seconds since the run started, for progress lines.
struct PhaseClock: Sendable {
    private let start = MonotonicClock.now()

    /// `12.0s`.
    var elapsed: String { format(MonotonicClock.seconds(from: start, to: MonotonicClock.now()), decimals: 1) + "s" }
}
