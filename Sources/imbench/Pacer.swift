import NIOCore
import Synchronization

/// What a paced send achieved.
struct PacerReport: Sendable {
    /// Messages sent (sequence numbers `0..<issued`).
    var issued = 0
    /// Messages the server accepted.
    var ok = 0
    /// Sequence numbers whose send failed.
    var failedSeqs: [Int] = []
    /// Failed sends by reason.
    var failures = FailureReasons()
    /// Monotonic time of sequence number 0's slot and of the last response (ns).
    var start: UInt64 = 0
    var end: UInt64 = 0
    /// The largest delay between a message's slot and its request going out (ns).
    var maxLag: UInt64 = 0
}

/// Sends messages at a fixed rate over the lanes of a ``PacedSender``.
///
/// Message `n` has the slot `start + n / rate`, computed from the start, never from the
/// previous send, so the rate does not drift. Each lane carries one message at a time; when
/// every lane is busy at a slot, the message goes out as soon as one is free, and its
/// timestamp is still its slot: a sender that falls behind shows up as latency instead of
/// hiding it (no coordinated omission). Confined to its event loop.
final class Pacer: @unchecked Sendable {
    private let loop: any EventLoop
    private let period: Double
    private let total: Int
    private let sender: any PacedSender
    private var idle: [Int] = []
    private var report = PacerReport()
    private var completed = 0
    private var timer: Scheduled<Void>?
    private let done: EventLoopPromise<PacerReport>
    /// Messages the server accepted so far (for progress, from any thread).
    let sentOK = Atomic<Int>(0)

    /// A pacer for `total` messages at `rate` per second through `sender`, on `loop`.
    init(rate: Double, total: Int, sender: any PacedSender, loop: any EventLoop) {
        self.loop = loop
        self.period = 1e9 / rate
        self.total = total
        self.sender = sender
        self.done = loop.makePromise()
    }

    /// Opens `lanes` lanes, sends everything, and returns once every message was answered.
    func run(lanes: Int) async throws -> PacerReport {
        let opened = try await sender.open(lanes: lanes, on: loop)
        loop.execute {
            self.idle = Array(0..<opened)
            self.report.start = MonotonicClock.now() + 1_000_000
            if self.total == 0 { self.done.succeed(self.report) } else { self.tick() }
        }
        let result = try await done.futureResult.get()
        await sender.close()
        return result
    }

    private func slot(of seq: Int) -> UInt64 {
        report.start + UInt64(Double(seq) * period)
    }

    private func tick() {
        timer = nil
        let now = MonotonicClock.now()
        let due = now < report.start ? 0 : min(total, Int(Double(now - report.start) / period) + 1)
        while report.issued < due, let lane = idle.popLast() {
            send(report.issued, over: lane, now: now)
            report.issued += 1
        }
        if report.issued < total && report.issued >= due {
            let next = slot(of: report.issued)
            timer = loop.scheduleTask(deadline: .uptimeNanoseconds(next)) { self.tick() }
        }
    }

    private func send(_ seq: Int, over lane: Int, now: UInt64) {
        let time = slot(of: seq)
        if now > time { report.maxLag = max(report.maxLag, now - time) }
        sender.send(seq, time: time, lane: lane).hop(to: loop).whenComplete { result in
            switch result {
            case .success:
                self.report.ok += 1
                self.sentOK.add(1, ordering: .relaxed)
            case .failure(let error):
                self.report.failedSeqs.append(seq)
                self.report.failures.add(FailureReasons.describe(error))
            }
            self.completed += 1
            self.release(lane)
        }
    }

    private func release(_ lane: Int) {
        if completed == total {
            report.end = MonotonicClock.now()
            timer?.cancel()
            done.succeed(report)
            return
        }
        idle.append(lane)
        if timer == nil { tick() }
    }
}

extension Result {
    /// Whether this is a success.
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
