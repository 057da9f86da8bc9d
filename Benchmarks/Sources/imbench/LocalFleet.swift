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
        guard spec.peer == nil else {
            // Peers take no tokens: every member connects to the peer's WebSocket listener.
            minted.store(spec.count, ordering: .relaxed)
            var outcome = BatchOutcome()
            outcome.ok = spec.count
            return MintReport(outcome: outcome, start: start, end: start)
        }
        guard spec.mintBatch > 1 else {
            let outcome = await api.forEach(count: spec.count, concurrency: spec.mintConcurrency, group: group) {
                session, offset in
                let index = spec.first + offset
                let url = try await session.connectURL(for: spec.name(of: index), node: index)
                self.urls.withLock { $0[offset] = url }
                self.minted.add(1, ordering: .relaxed)
            }
            return MintReport(outcome: outcome, start: start, end: MonotonicClock.now())
        }
        // Each request mints the URLs of up to mintBatch members of one node (member g's node
        // is g % nodes): request r covers node r % nodes, members in its slice of that node's.
        let nodes = spec.apis.count
        let chunks = (0..<nodes).flatMap { node in
            let members = stride(from: 0, to: spec.count, by: 1).filter { (spec.first + $0) % nodes == node }
            return stride(from: 0, to: members.count, by: spec.mintBatch).map {
                (node, Array(members[$0..<min($0 + spec.mintBatch, members.count)]))
            }
        }
        var outcome = await api.forEach(count: chunks.count, concurrency: spec.mintConcurrency, group: group) {
            session, chunk in
            let (node, offsets) = chunks[chunk]
            let urls = try await session.connectURLs(for: offsets.map { spec.name(of: spec.first + $0) }, node: node)
            self.urls.withLock { for (offset, url) in zip(offsets, urls) { $0[offset] = url } }
            self.minted.add(urls.count, ordering: .relaxed)
        }
        // forEach counted requests; count URLs.
        let failedURLs = spec.count - minted.load(ordering: .relaxed)
        outcome.ok = spec.count - failedURLs
        return MintReport(outcome: outcome, start: start, end: MonotonicClock.now())
    }

    func connect() async throws -> ConnectReport {
        let connector = WebSocketConnector(
            recorders: recorders,
            readyTimeout: .nanoseconds(Int64(spec.readyTimeout * 1e9)),
            tls: try ClientTLS(spec.tls), compact: spec.compact)
        let next = IndexDispenser(limit: spec.count)
        let lanes = (0..<max(1, min(spec.concurrency, spec.count))).map { _ in
            let loop = group.next()
            return loop.flatSubmit { self.runLane(on: loop, next: next, connector: connector) }
        }
        let reports = try await EventLoopFuture.whenAllSucceed(lanes, on: group.next()).get()
        return reports.reduce(into: ConnectReport()) { $0.merge($1) }
    }

    /// Connects members one after another on `loop` until `next` runs out; completes with the
    /// lane's report. Runs on `loop`; each completion schedules the next attempt (no stack
    /// growth when attempts fail at once).
    private func runLane(on loop: any EventLoop, next: IndexDispenser, connector: WebSocketConnector)
        -> EventLoopFuture<ConnectReport>
    {
        let report = NIOLoopBoundBox(ConnectReport(), eventLoop: loop)
        let done = loop.makePromise(of: ConnectReport.self)
        @Sendable func step() {
            guard let offset = next.take() else { return done.succeed(report.value) }
            report.value.firstStart = min(report.value.firstStart, MonotonicClock.now())
            attempt(offset, with: connector, on: loop).whenComplete { result in
                switch result {
                case .success(.ready(let readyAt)):
                    report.value.ok += 1
                    report.value.lastReady = max(report.value.lastReady, readyAt)
                case .success(.refused(let status, let reason)):
                    self.fail("HTTP \(status): \(reason)", in: &report.value)
                case .failure(let error):
                    self.fail(FailureReasons.describe(error), in: &report.value)
                }
                loop.execute { step() }
            }
        }
        step()
        return done.futureResult
    }

    private func attempt(_ offset: Int, with connector: WebSocketConnector, on loop: any EventLoop)
        -> EventLoopFuture<MemberOutcome>
    {
        let index = spec.first + offset
        if let peer = spec.peer, let websocket = spec.websocket {
            let tracker = SeqTracker(stride: spec.stride, offset: index)
            do {
                let meeting = try peer.meeting(spec.name(of: index), at: websocket, subscription: spec.peerSubscription)
                return connector.connect(
                    to: meeting.endpoint, from: spec.sources.address(for: index), tracker: tracker, on: loop,
                    peerGreeting: meeting.greeting)
            } catch {
                return loop.makeFailedFuture(error)
            }
        }
        guard let url = urls.withLock({ $0[offset] }) else {
            return loop.makeFailedFuture(BenchError.noConnectURL)
        }
        do {
            var endpoint = try Endpoint(parsing: url)
            if let websocket = spec.websocket { endpoint = websocket.withQuery(of: endpoint) }
            let tracker = SeqTracker(stride: spec.stride, offset: index)
            return connector.connect(to: endpoint, from: spec.sources.address(for: index), tracker: tracker, on: loop)
        } catch {
            return loop.makeFailedFuture(error)
        }
    }

    private func fail(_ reason: String, in report: inout ConnectReport) {
        report.failures.add(reason)
        connectFailed.add(1, ordering: .relaxed)
    }

    func snapshot() async throws -> Snapshot {
        let p99s = await recorders.collect { recorder -> UInt64 in
            defer { recorder.interval.reset() }
            return recorder.interval.totalCount == 0 ? 0 : recorder.interval.valueAtPercentile(99)
        }
        return Snapshot(
            minted: minted.load(ordering: .relaxed), open: recorders.open,
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
