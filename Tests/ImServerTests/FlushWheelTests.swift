import NIOCore
import NIOEmbedded
import Testing

@testable import ImServer

/// The flush wheel on an embedded loop whose clock the test moves: slots, spreading, and the
/// interval stretching under load and shrinking back.
@Suite struct FlushWheelTests {
    /// A flush target that records when it was flushed.
    private final class Target: FlushTarget {
        let flushPhase: Int
        var flushes: [NIODeadline] = []
        /// Scheduled and not flushed yet (the hub's `needsFlush` mark).
        var isWaiting = false
        init(phase: Int) { flushPhase = phase }
        func flush(at now: NIODeadline) {
            flushes.append(now)
            isWaiting = false
        }
    }

    /// How far behind its timers the simulated loop runs. (An embedded loop runs each task at
    /// exactly its deadline, so lateness is added to the clock the wheel reads.)
    private final class Lag {
        var amount = TimeAmount.zero
    }

    private static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    private func makeWheel(_ loop: EmbeddedEventLoop, lag: Lag = Lag()) throws -> FlushWheel<Target> {
        loop.advanceTime(to: Self.start)
        return try #require(
            FlushWheel<Target>(
                eventLoop: loop, interval: .milliseconds(10),
                clock: { loop.now + lag.amount }))
    }

    private func milliseconds(_ deadline: NIODeadline) -> Int64 { Int64(deadline.uptimeNanoseconds / 1_000_000) }

    @Test func zeroIntervalMeansNoWheel() {
        #expect(FlushWheel<Target>(eventLoop: EmbeddedEventLoop(), interval: .zero) == nil)
    }

    @Test func newConnectionsArePhasedEvenlyOverTheWheel() throws {
        let wheel = try makeWheel(EmbeddedEventLoop())
        let phases = (0..<400).map { _ in wheel.makePhase() }
        #expect(phases.allSatisfy { (0..<wheel.maximum).contains($0) })
        // 400 connections over 40 slots: each slot gets its share, give or take a few.
        let perSlot = Dictionary(grouping: phases, by: { $0 }).mapValues(\.count)
        #expect(perSlot.count == wheel.maximum)
        #expect(perSlot.values.allSatisfy { (7...13).contains($0) }, "\(perSlot.values.sorted())")
        // Any ten in a row already cover the wheel's quarters.
        #expect(Set(phases.prefix(10).map { $0 * 4 / wheel.maximum }).count == 4)
    }

    @Test func eachTargetIsFlushedOnceInItsOwnSlot() throws {
        let loop = EmbeddedEventLoop()
        let wheel = try makeWheel(loop)
        #expect(wheel.minimum == 10 && wheel.maximum == 40 && wheel.interval == 10)
        let targets = (0..<10).map { Target(phase: $0 * 3) }  // phases 0, 3, …, 27: slots mod 10 differ
        for target in targets { wheel.schedule(target, now: loop.now) }
        for _ in 0..<12 { loop.advanceTime(by: .milliseconds(1)) }
        let base = milliseconds(Self.start)
        for target in targets {
            #expect(target.flushes.count == 1, "phase \(target.flushPhase)")
            guard let flushed = target.flushes.first else { continue }
            let waited = milliseconds(flushed) - base
            #expect(waited >= 1 && waited <= 10, "waited at most one interval")
            #expect(milliseconds(flushed) % 10 == Int64(target.flushPhase % 10), "flushed in its own slot")
        }
        let slots = Set(targets.compactMap { $0.flushes.first.map(milliseconds) })
        #expect(slots.count == 10, "spread over the interval, not one burst")
    }

    @Test func nothingWaitingMeansNoTurns() throws {
        let loop = EmbeddedEventLoop()
        let wheel = try makeWheel(loop)
        let target = Target(phase: 5)
        wheel.schedule(target, now: loop.now)
        loop.advanceTime(by: .milliseconds(20))
        #expect(target.flushes.count == 1)
        loop.advanceTime(by: .milliseconds(50))
        #expect(target.flushes.count == 1, "flushed once per schedule")
    }

    @Test func dueOnlyAfterTheInterval() throws {
        let loop = EmbeddedEventLoop()
        let wheel = try makeWheel(loop)
        #expect(!wheel.isDue(lastFlushed: Self.start, now: Self.start + .milliseconds(9)))
        #expect(wheel.isDue(lastFlushed: Self.start, now: Self.start + .milliseconds(10)))
    }

    @Test func lateTurnsStretchTheIntervalAndOnTimeTurnsShrinkIt() throws {
        let loop = EmbeddedEventLoop()
        let lag = Lag()
        let wheel = try makeWheel(loop, lag: lag)
        let targets = (0..<40).map { Target(phase: $0) }
        /// Runs the loop for `steps` ms, keeping every target hot (scheduled whenever it is not waiting).
        func run(_ steps: Int) {
            for _ in 0..<steps {
                for target in targets where !target.isWaiting {
                    target.isWaiting = true
                    wheel.schedule(target, now: loop.now + lag.amount)
                }
                loop.advanceTime(by: .milliseconds(1))
            }
        }
        run(200)
        #expect(wheel.interval == wheel.minimum, "on time: the configured interval")
        lag.amount = .milliseconds(5)
        run(1000)
        #expect(wheel.interval == wheel.maximum, "turns 5 ms late: stretched to the longest interval")
        lag.amount = .zero
        run(3000)
        #expect(wheel.interval == wheel.minimum, "on time again: back to the configured interval")
        #expect(targets.allSatisfy { $0.flushes.count > 50 }, "every target kept being flushed")
    }
}
