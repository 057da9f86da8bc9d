import NIOCore
import NIOPosix
import Synchronization

/// A fleet whose members live in this process, on its own event loops.
final class LocalFleet: Fleet {
    let spec: FleetSpec
    private let group: MultiThreadedEventLoopGroup
    private let recorders: Recorders
    private let urls: Mutex<[String?]>
    private let minted = Atomic<Int>(0)
    private let connectFailed = Atomic<Int>(0)

    init(spec: FleetSpec) {
        self.spec = spec
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, spec.threads))
        self.recorders = Recorders(group: group)
        self.urls = Mutex([String?](repeating: nil, count: spec.count))
    }

    private var api: ServerAPI { ServerAPI(nodes: spec.apis, apiKey: spec.apiKey) }

    func mint() async throws -> MintReport {
        let spec = self.spec
        let start = MonotonicClock.now()
        let outcome = await api.forEach(count: spec.count, concurrency: spec.mintConcurrency, group: group) {
            session, offset in
            let index = spec.first + offset
            let url = try await session.connectURL(for: spec.name(of: index), node: index)
            self.urls.withLock { $0[offset] = url }
            self.minted.add(1, ordering: .relaxed)
        }
        return MintReport(outcome: outcome, start: start, end: MonotonicClock.now())
    }

    func connect() async throws -> ConnectReport {
        let connector = WebSocketConnector(recorders: recorders, group: group,
                                           readyTimeout: .nanoseconds(Int64(spec.readyTimeout * 1e9)))
        let next = IndexDispenser(limit: spec.count)
        return await withTaskGroup(of: ConnectReport.self) { tasks in
            for _ in 0..<max(1, min(spec.concurrency, spec.count)) {
                tasks.addTask {
                    var report = ConnectReport()
                    while let offset = next.take() { await self.connectOne(offset, with: connector, into: &report) }
                    return report
                }
            }
            var total = ConnectReport()
            for await report in tasks { total.merge(report) }
            return total
        }
    }

    private func connectOne(_ offset: Int, with connector: WebSocketConnector, into report: inout ConnectReport) async {
        let index = spec.first + offset
        func fail(_ reason: String) {
            report.failures.add(reason)
            connectFailed.add(1, ordering: .relaxed)
        }
        guard let url = urls.withLock({ $0[offset] }) else { return fail("no connect URL (minting failed)") }
        let start = MonotonicClock.now()
        report.firstStart = min(report.firstStart, start)
        do {
            var endpoint = try Endpoint(parsing: url)
            if let websocket = spec.websocket { endpoint = websocket.withQuery(of: endpoint) }
            let tracker = SeqTracker(stride: spec.stride, offset: index)
            switch try await connector.connect(to: endpoint, from: spec.sources.address(for: index), tracker: tracker) {
            case .ready(let readyAt):
                report.ok += 1
                report.lastReady = max(report.lastReady, readyAt)
            case .refused(let status, let reason):
                fail("HTTP \(status): \(reason)")
            }
        } catch {
            fail(FailureReasons.describe(error))
        }
    }

    func snapshot() async throws -> Snapshot {
        let p99s = await recorders.collect { recorder -> UInt64 in
            defer { recorder.interval.reset() }
            return recorder.interval.totalCount == 0 ? 0 : recorder.interval.valueAtPercentile(99)
        }
        return Snapshot(minted: minted.load(ordering: .relaxed), open: recorders.open,
                        failed: connectFailed.load(ordering: .relaxed), dropped: recorders.dropped,
                        delivered: recorders.delivered, intervalP99: p99s.max() ?? 0)
    }

    func finish(sent: Int, failed: [Int]) async throws -> DeliveryReport {
        let reports = await recorders.collect { recorder -> DeliveryReport in
            var report = DeliveryReport()
            report.members = recorder.members.count
            report.delivered = recorder.delivered.load(ordering: .relaxed)
            report.dropped = recorder.dropped.load(ordering: .relaxed)
            report.lastDelivery = recorder.lastDelivery
            for member in recorder.members {
                report.lost += member.tracker.lost(sent: sent, failed: failed)
                report.duplicates += member.tracker.duplicates
                report.misrouted += member.tracker.misrouted
            }
            report.histogram = SparseHistogram(recorder.histogram)
            return report
        }
        return DeliveryReport.merged(reports)
    }

    func close() async {
        _ = await recorders.collect { recorder in
            recorder.closing = true
            for member in recorder.members { member.sendClose() }
        }
        let deadline = MonotonicClock.now() + 5_000_000_000
        while recorders.open > 0 && MonotonicClock.now() < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        _ = await recorders.collect { recorder in
            for member in recorder.members { member.channel?.close(promise: nil) }
            recorder.members.removeAll()
        }
        try? await group.shutdownGracefully()
    }
}
