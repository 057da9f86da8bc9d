import ImCore
import Synchronization

/// Message ids: a random prefix per helper and a counter, 20 hex digits.
///
/// Unique without a system call per message: 40 random bits tell helpers apart, 40 counter
/// bits number one helper's messages (a trillion before they repeat).
final class MessageIDs: Sendable {
    private let prefix = randomHex(bytes: 5)
    private let counter = Atomic<UInt64>(0)

    /// The next id.
    func next() -> String {
        prefix + hex(counter.wrappingAdd(1, ordering: .relaxed).newValue, digits: 10)
    }
}
