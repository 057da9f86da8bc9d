import NIOCore
import Synchronization

/// A rate limit per source address: each address gets a ``TokenBucket`` of its own, so one
/// client flooding the node with handshakes (forged tokens, say) uses up its own budget and
/// not everyone's.
///
/// Bounded: it tracks at most ``capacity`` addresses. When that many are tracked, buckets that
/// have refilled (sources that went quiet) are forgotten; if none has, new addresses share one
/// overflow bucket until some do, so a flood from many addresses costs no more memory.
final class SourceRateLimiter: Sendable {
    /// An IP address as a small hashable value (no string per handshake).
    enum Source: Hashable {
        case v4(UInt32)
        case v6(UInt64, UInt64)
        case other

        init(_ address: SocketAddress?) {
            switch address {
            case .v4(let v4)?:
                self = .v4(v4.address.sin_addr.s_addr)
            case .v6(let v6)?:
                self = withUnsafeBytes(of: v6.address.sin6_addr) { raw in
                    .v6(
                        raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                        raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                }
            default:
                self = .other
            }
        }
    }

    private struct State {
        var buckets: [Source: TokenBucket] = [:]
        var overflow: TokenBucket
    }

    /// The most addresses tracked at once.
    let capacity: Int
    private let rate: Int
    private let burst: Int
    private let state: Mutex<State>

    /// A limit of `rate` a second per address, `burst` at once, for at most `capacity` addresses.
    init(rate: Int, burst: Int, capacity: Int = 16_384) {
        self.rate = rate
        self.burst = burst
        self.capacity = capacity
        self.state = Mutex(State(overflow: TokenBucket(rate: rate, burst: burst)))
    }

    /// Takes one token from `source`'s bucket; `false` when that source is over its rate.
    func take(from source: Source, now: NIODeadline = .now()) -> Bool {
        state.withLock { state in
            if let taken = state.buckets[source]?.take(now: now) { return taken }
            if state.buckets.count >= capacity {
                state.buckets = state.buckets.filter { !$0.value.isFull(now: now) }
                if state.buckets.count >= capacity { return state.overflow.take(now: now) }
            }
            var bucket = TokenBucket(rate: rate, burst: burst, now: now)
            let taken = bucket.take(now: now)
            state.buckets[source] = bucket
            return taken
        }
    }

    /// How many addresses are tracked (for tests).
    var trackedSources: Int { state.withLock { $0.buckets.count } }
}
