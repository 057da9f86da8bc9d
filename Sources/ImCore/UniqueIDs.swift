import ImBackplane
import Synchronization

/// Ids unique without a system call each: a random prefix drawn once per generator, then a
/// counter, all in lower-case hex.
///
/// A token id or a message id drawn from the system's random source cost a `getrandom` call per
/// 8 bytes: a quarter of minting a connect URL. Such ids need to be unique, not secret (a token
/// is signed, and its id is claimed only after the signature is checked), so one draw per
/// generator and a counter are enough.
package final class UniqueIDs: Sendable {
    /// The random prefix's hex digits, as UTF-8.
    private let prefix: [UInt8]
    private let counterDigits: Int
    private let counter = Atomic<UInt64>(0)

    /// Ids of `randomBytes` random bytes (twice as many hex digits), then a counter of
    /// `counterDigits` hex digits (at most 16), which wraps after 16^`counterDigits` ids.
    package init(randomBytes: Int, counterDigits: Int) {
        prefix = Array(randomHex(bytes: randomBytes).utf8)
        self.counterDigits = min(max(counterDigits, 1), 16)
    }

    /// The next id.
    package func next() -> String {
        let value = counter.wrappingAdd(1, ordering: .relaxed).newValue
        let count = prefix.count + counterDigits
        return String(unsafeUninitializedCapacity: count) { out in
            _ = out.initialize(fromContentsOf: prefix)
            var rest = value
            for index in stride(from: count - 1, through: prefix.count, by: -1) {
                // The digit by arithmetic, not from a global table (whose lazy initialiser is
                // checked on every access: a tenth of an id).
                let digit = UInt8(truncatingIfNeeded: rest & 0xF)
                out[index] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") - 10 + digit
                rest >>= 4
            }
            return count
        }
    }
}
