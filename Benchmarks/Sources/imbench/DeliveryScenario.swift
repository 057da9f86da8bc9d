import NIOCore
import NIOPosix

/// Sends messages at a fixed rate through the server API and measures how they reach
/// connected members: latency percentiles, throughput, and that nothing was lost or
/// duplicated.
struct DeliveryScenario {
    /// What is sent: to one channel that all members joined, or from `s<i>` to `r<i>` (only
    /// the receivers connect).
    var plan: SendPlan
    var targets: Targets
    var client: ClientOptions
    var members: Int
    var load: LoadOptions
    var pids: [Int32]
    /// p2p: channels each node listens to besides the pairs' (one receiver per node joins
    /// this many channels of its own, nobody sends to them), to measure how delivery changes
    /// with the subjects a node subscribes.
    var listenChannels = 0

    private var isFanout: Bool { if case .channel = plan { true } else { false } }

    /// Runs the scenario and prints its result line; returns the exit code.
    func run() async throws -> Int32 {
        var draft = try client.spec(
            targets: targets, prefix: isFanout ? "bench-" : "r", count: members,
            stride: isFanout ? 1 : members)
        if let peer = targets.peer {
            // A peer: members subscribe themselves, to the fan-out's channel or their own.
            guard listenChannels == 0, load.sender == .api else {
                throw BenchError.invalidArgument("--peer measures fanout and p2p with the default sender only")
            }
            draft.peerSubscription = try peer.subscription(for: plan)
        }
        let spec = draft
        let fleet = try client.makeFleet(spec)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let phase = PhaseClock()

        let mint = try await Progress.reporting(
            { _ in
                (try? await fleet.snapshot()).map { "[\(phase.elapsed)] minting: \($0.minted)/\(members)" }
            }, while: { try await fleet.mint() })
        report(mint.outcome.failures, title: "mint failures")
        let connected = try await Progress.reporting(
            { _ in
                (try? await fleet.snapshot()).map {
                    "[\(phase.elapsed)] connecting: open=\($0.open)/\(members) failed=\($0.failed)"
                }
            }, while: { try await fleet.connect() })
        Console.log(
            "connected \(connected.ok)/\(members) (\(format(connected.handshakesPerSecond, decimals: 0)) handshakes/s)")
        report(connected.failures, title: "connection failures")

        if case .channel(let channel) = plan, targets.peer == nil {
            let joined = await targets.api.forEach(count: members, concurrency: client.mintConcurrency, group: group) {
                session, index in
                try await session.join(spec.name(of: index), channel: channel, node: index)
            }
            Console.log("joined \(joined.ok)/\(members) to \(channel)")
            report(joined.failures, title: "join failures")
        }

        if listenChannels > 0, case .pairs = plan {
            let nodes = targets.api.nodes.count
            let listeners = min(nodes, connected.ok)
            let joined = await targets.api.forEach(count: listeners, concurrency: nodes, group: group) {
                session, index in
                let channels = (0..<listenChannels).map { "idle-\(index)-\($0)" }
                try await session.join(spec.name(of: index), channels: channels, node: index)
            }
            Console.log("joined \(joined.ok)/\(listeners) receivers (one per node) to \(listenChannels) channels each")
            report(joined.failures, title: "join failures")
        }

        let total = Int((load.rate * load.duration).rounded())
        let sender: any PacedSender =
            switch (load.sender, targets.peer) {
            case (_, let peer?): try peer.sender(for: plan)
            case (.api, nil): APISender(api: targets.api, plan: plan)
            case (.helper, nil): try await HelperSender(backplane: load.backplane ?? "", plan: plan)
            }
        let pacer = Pacer(rate: load.rate, total: total, sender: sender, loop: group.next())
        let previous = LastValue()
        let sent = try await Progress.reporting(
            { _ in
                guard let snapshot = try? await fleet.snapshot() else { return nil }
                let rate = snapshot.delivered - previous.exchange(snapshot.delivered)
                return "[\(phase.elapsed)] sending: sent=\(pacer.sentOK.load(ordering: .relaxed))/\(total)"
                    + " delivered=\(snapshot.delivered) (\(rate)/s) p99_1s=\(format(Double(snapshot.intervalP99) / 1000, decimals: 2))ms"
                    + " open=\(snapshot.open) dropped=\(snapshot.dropped)" + memory(pids)
            }, while: { try await pacer.run(lanes: load.inFlight) })
        report(sent.failures, title: "send failures")

        let expected = isFanout ? sent.ok * connected.ok : sent.ok * connected.ok / max(members, 1)
        try await settle(fleet, expected: expected)
        let delivery = try await fleet.finish(sent: sent.issued, failed: sent.failedSeqs)
        await fleet.close()
        try? await group.shutdownGracefully()
        return summarize(sent: sent, connected: connected, delivery: delivery)
    }

    /// Waits until `expected` messages arrived, nothing arrived for a second, or `--settle` ran out.
    private func settle(_ fleet: any Fleet, expected: Int) async throws {
        let deadline = MonotonicClock.now() + UInt64(load.settle * 1e9)
        var last = -1
        var quietSince = MonotonicClock.now()
        while MonotonicClock.now() < deadline {
            let delivered = try await fleet.snapshot().delivered
            if delivered >= expected { return }
            if delivered != last {
                last = delivered
                quietSince = MonotonicClock.now()
            } else if MonotonicClock.now() - quietSince > 1_000_000_000 {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    private func summarize(sent: PacerReport, connected: ConnectReport, delivery: DeliveryReport) -> Int32 {
        let histogram = delivery.histogram.histogram
        let seconds = MonotonicClock.seconds(from: sent.start, to: max(delivery.lastDelivery, sent.end))
        var result = ResultLine(scenario: isFanout ? "fanout" : "p2p")
        result.add(isFanout ? "members" : "pairs", members)
        if listenChannels > 0 { result.add("listen_channels", listenChannels) }
        result.add("rate", load.rate, decimals: 0)
        result.add("sent", sent.ok)
        result.add("delivered", delivery.delivered)
        result.add("lost", delivery.lost)
        result.add("dup", delivery.duplicates)
        result.add("deliveries_per_s", seconds > 0 ? Double(delivery.delivered) / seconds : 0, decimals: 1)
        result.add("p50_ms", LatencyHistogram.milliseconds(histogram, percentile: 50))
        result.add("p99_ms", LatencyHistogram.milliseconds(histogram, percentile: 99))
        result.add("p999_ms", LatencyHistogram.milliseconds(histogram, percentile: 99.9))
        result.add("max_ms", Double(delivery.histogram.maxRecorded) / 1000)
        result.add("duration_s", load.duration, decimals: 1)
        result.add("connected", connected.ok)
        result.add("connect_failed", connected.failed)
        result.add("send_errors", sent.failedSeqs.count)
        result.add("misrouted", delivery.misrouted)
        result.add("dropped", delivery.dropped)
        result.add("send_lag_max_ms", Double(sent.maxLag) / 1e6)
        Console.output(result.text)
        let clean =
            delivery.lost == 0 && delivery.duplicates == 0 && delivery.misrouted == 0
            && connected.failed == 0 && sent.failedSeqs.isEmpty && delivery.dropped == 0
        return clean ? 0 : 1
    }
}
