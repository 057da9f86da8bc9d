#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The one clock every latency is measured with: `CLOCK_MONOTONIC`, in nanoseconds.
///
/// The sender stamps each message with `now()` and the receiving client subtracts it from its
/// own `now()`. Both run on this machine (in one process or in worker processes), and
/// `CLOCK_MONOTONIC` is shared by every process of a machine, so the difference is the
/// end-to-end latency without any clock synchronisation.
enum MonotonicClock {
    /// Nanoseconds since an arbitrary point (boot on Linux).
    @inline(__always)
    static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }

    /// Seconds between two readings, as a `Double` (0 when `end` is not after `start`).
    static func seconds(from start: UInt64, to end: UInt64) -> Double {
        end > start ? Double(end - start) / 1e9 : 0
    }
}
