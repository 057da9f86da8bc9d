import NIOCore
import Synchronization

/// What a paced send achieved.
struct PacerReport: Sendable {
    /// Requests sent (sequence numbers `0..<issued`).
    var issued = 0
    /// Requests the server answered with 2xx.
    var ok = 0
    /// Sequence numbers whose request failed.
    var failedSeqs: [Int] = []
    /// Failed requests by reason.
    var failures = FailureReasons()
    /// Monotonic time of sequence number 0's slot and of the last response (ns).
    var start: UInt64 = 0
    var end: UInt64 = 0
    /// The largest delay between a message's slot and its request going out (ns).
    var maxLag: UInt64 = 0
}

/// Sends requests at a fixed rate over keep-alive HTTP/1.1 connections it owns.
///
/// Message `n` has the slot `start + n / rate`, computed from the start, never from the
/// previous send, so the rate does not drift. Each connection carries one request at a time;
/// when every connection is busy at a slot, the message goes out as soon as one is free, and
/// its timestamp is still its slot: a sender that falls behind shows up as latency instead of
/// hiding it (no coordinated omission). Confined to its event loop.
final class Pacer: @unchecked Sendable {
    /// Writes the body of message `seq` stamped with `time`; returns the request target.
    typealias Request = @Sendable (_ seq: Int, _ time: UInt64, _ body: inout ByteBuffer) -> String

    private let loop: any EventLoop
    private let period: Double
    private let total: Int
    private let makeRequest: Request
    private let api: ServerAPI
    private var idle: [HTTPConnection] = []
    private var report = PacerReport()
    private var completed = 0
    private var timer: Scheduled<Void>?
    private let done: EventLoopPromise<PacerReport>
    /// Requests answered with 2xx so far (for progress, from any thread).
    let sentOK = Atomic<Int>(0)

    /// A pacer for `total` messages at `rate` per second on `loop`.
    init(rate: Double, total: Int, api: ServerAPI, loop: any EventLoop, request: @escaping Request) {
        self.loop = loop
        self.period = 1e9 / rate
        self.total = total
        self.api = api
        self.makeRequest = request
        self.done = loop.makePromise()
    }

    /// Opens `connections` connections (spread over the API nodes), sends everything, and
    /// returns once every request was answered.
    func run(connections: Int) async throws -> PacerReport {
        var opened: [HTTPConnection] = []
        for index in 0..<max(1, connections) {
            opened.append(try await HTTPConnection.connect(to: api.nodes[index % api.nodes.count], apiKey: api.apiKey,
                                                           on: loop))
        }
        let ready = opened
        loop.execute {
            self.idle = ready
            self.report.start = MonotonicClock.now() + 1_000_000
            if self.total == 0 { self.done.succeed(self.report) } else { self.tick() }
        }
        let result = try await done.futureResult.get()
        for connection in opened { connection.close() }
        return result
    }

    private func slot(of seq: Int) -> UInt64 {
        report.start + UInt64(Double(seq) * period)
    }

    private func tick() {
        timer = nil
        let now = MonotonicClock.now()
        let due = now < report.start ? 0 : min(total, Int(Double(now - report.start) / period) + 1)
        while report.issued < due, let connection = idle.popLast() {
            send(report.issued, over: connection, now: now)
            report.issued += 1
        }
        if report.issued < total && report.issued >= due {
            let next = slot(of: report.issued)
            timer = loop.scheduleTask(deadline: .uptimeNanoseconds(next)) { self.tick() }
        }
    }

    private func send(_ seq: Int, over connection: HTTPConnection, now: UInt64) {
        let time = slot(of: seq)
        if now > time { report.maxLag = max(report.maxLag, now - time) }
        var body = connection.channel.allocator.buffer(capacity: 96)
        let target = makeRequest(seq, time, &body)
        connection.request(.POST, target, body: body).whenComplete { result in
            switch result {
            case .success(let reply) where reply.isSuccess:
                self.report.ok += 1
                self.sentOK.add(1, ordering: .relaxed)
            case .success(let reply):
                self.failed(seq, reason: "HTTP \(reply.status): \(reply.text.prefix(100))")
            case .failure(let error):
                self.failed(seq, reason: FailureReasons.describe(error))
            }
            self.completed += 1
            self.release(connection)
        }
    }

    private func failed(_ seq: Int, reason: String) {
        report.failedSeqs.append(seq)
        report.failures.add(reason)
    }

    private func release(_ connection: HTTPConnection) {
        if completed == total {
            report.end = MonotonicClock.now()
            timer?.cancel()
            done.succeed(report)
            return
        }
        if connection.isActive {
            idle.append(connection)
            if timer == nil { tick() }
            return
        }
        HTTPConnection.connect(to: connection.endpoint, apiKey: api.apiKey, on: loop).whenComplete { result in
            if case .success(let fresh) = result { self.idle.append(fresh) }
            self.reconnectFailures += result.isSuccess ? 0 : 1
            if self.idle.isEmpty && self.reconnectFailures > 100 {
                self.done.fail(BenchError.server("cannot reconnect to the API"))
            } else if self.timer == nil {
                self.tick()
            }
        }
    }

    private var reconnectFailures = 0
}

extension Result {
    /// Whether this is a success.
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
