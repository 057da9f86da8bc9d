import NIOCore
import NIOPosix

/// Failures counted by reason, so a run ends with "12 × HTTP 429: too many handshakes".
struct FailureReasons: Sendable, Codable, Equatable {
    /// Count by reason text.
    private(set) var counts: [String: Int] = [:]

    /// How many failures in all.
    var total: Int { counts.values.reduce(0, +) }

    /// Counts one failure.
    mutating func add(_ reason: String, count: Int = 1) {
        counts[String(reason.prefix(160)), default: 0] += count
    }

    /// Adds every failure of `other`.
    mutating func merge(_ other: FailureReasons) {
        for (reason, count) in other.counts { add(reason, count: count) }
    }

    /// The reasons, most frequent first.
    var sorted: [(reason: String, count: Int)] {
        counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// A short, stable description of `error` for counting.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as BenchError: return error.description
        case let error as IOError: return "I/O: \(error.description)"
        case let error as NIOConnectionError:
            let underlying = error.connectionErrors.first.map { "\($0.error)" } ?? "no address"
            return "connect: \(underlying)"
        case is ChannelError: return "channel: \(error)"
        default: return "\(error)"
        }
    }
}
