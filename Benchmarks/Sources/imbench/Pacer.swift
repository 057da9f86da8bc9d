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
/// previous send, so the rate does not drift. The pacer wakes at most once per
/// ``tickInterval`` and sends everything due; each lane carries one message at a time, and
/// when every lane is busy the message goes out at the next tick with a free lane. Its
/// timestamp stays its slot: a sender that falls behind (or the tick's granularity) shows up
/// as latency instead of hiding it (no coordinated omission). Completions do not wake the
/// pacer's loop (they return lanes through a lock), so its cost does not grow with the rate.
final class Pacer: @unchecked Sendable {
    /// The longest the pacer sleeps between sends that are due.
    static let tickInterval: UInt64 = 1_000_000

    private struct Shared {
        var free: [Int] = []
        var completed = 0
        var ok = 0
        var failedSeqs: [Int] = []
        var failures = FailureReasons()
        var end: UInt64 = 0
    }

    private let loop: any EventLoop
    private let period: Double
    private let total: Int
    private let sender: any PacedSender
    private var report = PacerReport()
    private var timer: Scheduled<Void>?
    private let shared = Mutex(Shared())
    private let done: EventLoopPromise<Void>
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
        shared.withLock { $0.free = Array(0..<opened) }
        loop.execute {
            self.report.start = MonotonicClock.now() + 1_000_000
            if self.total == 0 { self.done.succeed() } else { self.tick() }
        }
        try await done.futureResult.get()
        await sender.close()
        let onLoop = try await loop.submit { self.report }.get()
        return shared.withLock { shared in
            PacerReport(
                issued: onLoop.issued, ok: shared.ok, failedSeqs: shared.failedSeqs, failures: shared.failures,
                start: onLoop.start, end: shared.end, maxLag: onLoop.maxLag)
        }
    }

    private func slot(of seq: Int) -> UInt64 {
        report.start + UInt64(Double(seq) * period)
    }

    private func tick() {
        timer = nil
        let now = MonotonicClock.now()
        let due = now < report.start ? 0 : min(total, Int(Double(now - report.start) / period) + 1)
        if report.issued < due {
            let lanes = shared.withLock { shared -> [Int] in
                let count = min(due - report.issued, shared.free.count)
                defer { shared.free.removeLast(count) }
                return Array(shared.free.suffix(count))
            }
            var batch: [PacedMessage] = []
            batch.reserveCapacity(lanes.count)
            for lane in lanes {
                let time = slot(of: report.issued)
                if now > time { report.maxLag = max(report.maxLag, now - time) }
                batch.append(PacedMessage(seq: report.issued, time: time, lane: lane))
                report.issued += 1
            }
            if !batch.isEmpty { send(batch) }
        }
        guard report.issued < total else { return }
        let next = max(slot(of: report.issued), now + Self.tickInterval)
        timer = loop.scheduleTask(deadline: .uptimeNanoseconds(next)) { self.tick() }
    }

    private func send(_ batch: [PacedMessage]) {
        sender.send(batch) { message, result in
            if case .success = result { self.sentOK.add(1, ordering: .relaxed) }
            let finished = self.shared.withLock { shared -> Bool in
                switch result {
                case .success:
                    shared.ok += 1
                case .failure(let error):
                    shared.failedSeqs.append(message.seq)
                    shared.failures.add(FailureReasons.describe(error))
                }
                shared.completed += 1
                shared.free.append(message.lane)
                guard shared.completed == self.total else { return false }
                shared.end = MonotonicClock.now()
                return true
            }
            if finished { self.done.succeed() }
        }
    }
}

extension Result {
    /// Whether this is a success.
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
