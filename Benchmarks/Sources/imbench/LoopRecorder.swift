import Histogram
import NIOCore
import Synchronization

/// What the members of one event loop received: their latency histograms and counters.
///
/// Everything but the atomics is touched only on ``eventLoop`` (by ``MemberHandler``s of
/// that loop, and by `submit`ted reads), so the hot path takes no lock.
final class LoopRecorder: @unchecked Sendable {
    /// The loop whose members record here.
    let eventLoop: any EventLoop

    /// Every latency since the start (loop-confined).
    var histogram = LatencyHistogram.make()
    /// Latencies since the last progress read (loop-confined).
    var interval = LatencyHistogram.make()
    /// The members on this loop (loop-confined).
    var members: [MemberHandler] = []
    /// When the last message frame arrived (loop-confined).
    var lastDelivery: UInt64 = 0
    /// Set when the benchmark closes its sockets, so those closes are not counted as drops.
    var closing = false

    /// Message frames received (read by progress from any thread).
    let delivered = Atomic<Int>(0)
    /// Members that received `ready` and are still open.
    let open = Atomic<Int>(0)
    /// Members whose connection the server closed (or that broke) after `ready`.
    let dropped = Atomic<Int>(0)

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Records one message's latency in nanoseconds (called on the loop).
    @inline(__always)
    func record(latencyNanoseconds: UInt64, at now: UInt64) {
        let micros = min(latencyNanoseconds / 1000, LatencyHistogram.highest)
        histogram.record(micros)
        interval.record(micros)
        lastDelivery = now
        delivered.add(1, ordering: .relaxed)
    }
}

/// One ``LoopRecorder`` per loop of a group, found by loop.
struct Recorders: Sendable {
    /// All recorders, one per loop.
    let all: [LoopRecorder]
    private let byLoop: [ObjectIdentifier: LoopRecorder]

    init(group: any EventLoopGroup) {
        var all: [LoopRecorder] = []
        for loop in group.makeIterator() { all.append(LoopRecorder(eventLoop: loop)) }
        self.all = all
        self.byLoop = Dictionary(uniqueKeysWithValues: all.map { (ObjectIdentifier($0.eventLoop), $0) })
    }

    /// The recorder of `loop`.
    func recorder(for loop: any EventLoop) -> LoopRecorder {
        byLoop[ObjectIdentifier(loop)]!
    }

    /// Runs `body` on every recorder's loop and collects the results.
    func collect<T: Sendable>(_ body: @escaping @Sendable (LoopRecorder) -> T) async -> [T] {
        var results: [T] = []
        for recorder in all {
            if let value = try? await recorder.eventLoop.submit({ body(recorder) }).get() { results.append(value) }
        }
        return results
    }

    /// Messages received so far, across loops.
    var delivered: Int { all.reduce(0) { $0 + $1.delivered.load(ordering: .relaxed) } }
    /// Open members, across loops.
    var open: Int { all.reduce(0) { $0 + $1.open.load(ordering: .relaxed) } }
    /// Dropped members, across loops.
    var dropped: Int { all.reduce(0) { $0 + $1.dropped.load(ordering: .relaxed) } }
}
