import NIOCore

/// Something the ``FlushWheel`` flushes: a connection, or a stand-in in tests.
protocol FlushTarget: AnyObject {
    /// The target's millisecond within the wheel's longest interval (``FlushWheel/makePhase()``).
    var flushPhase: Int { get }
    /// Flushes what was written to the target.
    func flush(at now: NIODeadline)
}

/// When the hot connections of one event loop are flushed: a timing wheel of one bucket per
/// millisecond.
///
/// A connection flushed less than ``interval`` ago waits for its next slot instead of being
/// flushed at once, so it gets several messages per syscall. Every connection has its own
/// phase (``makePhase()``), so hot connections' flushes are spread evenly over the interval
/// rather than landing in one burst that the last in line wait for.
///
/// The interval adapts to load between the configured one and four times that: when the loop
/// runs its turns more than 3 ms late on average it is overloaded, and longer batches (fewer,
/// larger writes) are what gives it back time; once turns are on time again (under 1 ms late
/// on average) the interval shrinks back a millisecond per interval. A lightly loaded node
/// keeps the configured latency; a saturated one trades latency for throughput instead of
/// falling behind. Loop-confined.
final class FlushWheel<Target: FlushTarget> {
    private let eventLoop: any EventLoop
    /// The configured interval and the longest the wheel stretches it to, in milliseconds.
    let minimum: Int, maximum: Int
    /// The current interval in milliseconds.
    private(set) var interval: Int
    private var buckets: [[Target]]
    private var waiting = 0
    /// The last millisecond whose bucket was flushed.
    private var cursor: Int64 = 0
    private var turn: Scheduled<Void>?
    private var turnDeadline = NIODeadline.uptimeNanoseconds(0)
    private let clock: () -> NIODeadline
    private var lastAdjustment: Int64 = 0
    /// How late turns run, smoothed (nanoseconds, exponentially weighted, 1/8 per turn).
    private var lateness: Int64 = 0

    /// Turns late by more than this on average mean overload.
    private static var overloadLateness: Int64 { 3_000_000 }
    /// Turns late by less than this on average are on time.
    private static var onTimeLateness: Int64 { 1_000_000 }

    /// A wheel for `interval` (rounded up to whole milliseconds); `nil` for zero, which means
    /// every connection is flushed at once. `clock` is the loop's time (tests pass an embedded
    /// loop's).
    init?(eventLoop: any EventLoop, interval: TimeAmount, clock: @escaping () -> NIODeadline = NIODeadline.now) {
        guard interval > .zero else { return nil }
        self.eventLoop = eventLoop
        self.clock = clock
        minimum = max(1, Int((interval.nanoseconds + 999_999) / 1_000_000))
        maximum = min(4 * minimum, 1000)
        self.interval = minimum
        buckets = Array(repeating: [], count: maximum)
    }

    /// A phase for a new connection: its millisecond within the longest interval.
    func makePhase() -> Int {
        // Successive connections land about 0.618 of the wheel apart (the golden ratio), so
        // any run of them is spread evenly; no random draw (a syscall) per connection.
        phaseSeed &+= 0x9E37_79B9
        return Int((UInt64(phaseSeed) * UInt64(maximum)) >> 32)
    }

    private var phaseSeed: UInt32 = 0

    /// Whether a connection last flushed at `lastFlush` may be flushed at `now`.
    @inline(__always)
    func isDue(lastFlushed lastFlush: NIODeadline, now: NIODeadline) -> Bool {
        now.uptimeNanoseconds >= lastFlush.uptimeNanoseconds &+ UInt64(interval) &* 1_000_000
    }

    /// Puts `connection` in the bucket of its next slot (at most one interval away).
    func schedule(_ connection: Target, now: NIODeadline) {
        let current = Self.millisecond(of: now)
        if turn == nil { cursor = current }
        let span = Int64(interval)
        var offset = (Int64(connection.flushPhase) - current) % span
        if offset <= 0 { offset += span }
        let slot = current + offset
        buckets[Int(slot % Int64(maximum))].append(connection)
        waiting += 1
        if let pending = turn {
            // The pending turn is for a later slot: bring it forward.
            guard slot < Self.millisecond(of: turnDeadline) else { return }
            pending.cancel()
        }
        scheduleTurn(after: cursor)
    }

    /// Flushes the buckets of every millisecond since the last turn (at most one full turn).
    private func turnOnce() {
        turn = nil
        let now = clock()
        adapt(lateness: Int64(now.uptimeNanoseconds) - Int64(turnDeadline.uptimeNanoseconds), at: now)
        let current = Self.millisecond(of: now)
        var millisecond = cursor + 1
        let last = min(current, cursor + Int64(maximum))
        while millisecond <= last {
            let index = Int(millisecond % Int64(maximum))
            if !buckets[index].isEmpty {
                for connection in buckets[index] { connection.flush(at: now) }
                waiting -= buckets[index].count
                buckets[index].removeAll(keepingCapacity: true)
            }
            millisecond += 1
        }
        cursor = current
        if waiting > 0 { scheduleTurn(after: current) }
    }

    /// Lengthens the interval by a quarter while turns run late, shortens it by 1 ms while they
    /// are on time; at most once per interval.
    private func adapt(lateness latest: Int64, at now: NIODeadline) {
        lateness += (max(latest, 0) - lateness) / 8
        let current = Self.millisecond(of: now)
        guard current - lastAdjustment >= Int64(interval) else { return }
        if lateness > Self.overloadLateness {
            interval = min(maximum, interval + max(1, interval / 4))
            lastAdjustment = current
        } else if lateness < Self.onTimeLateness && interval > minimum {
            interval -= 1
            lastAdjustment = current
        }
    }

    /// Schedules the next turn for the first non-empty bucket after millisecond `current`.
    private func scheduleTurn(after current: Int64) {
        var next = current + 1
        while buckets[Int(next % Int64(maximum))].isEmpty && next < current + Int64(maximum) {
            next += 1
        }
        turnDeadline = .uptimeNanoseconds(UInt64(max(next, 0)) * 1_000_000)
        turn = eventLoop.assumeIsolated().scheduleTask(deadline: turnDeadline) { self.turnOnce() }
    }

    private static func millisecond(of deadline: NIODeadline) -> Int64 {
        Int64(deadline.uptimeNanoseconds / 1_000_000)
    }
}
