import ImCore
import Logging
import Synchronization

/// The helper's reply subject: nodes confirm join, leave and force-offline there, and the
/// helper waits for those confirmations (bounded by a timeout).
final class CommandInbox: Sendable {
    let subject: String
    private let subscriber: any BusSubscriber
    private let pending = Mutex([String: (remaining: Int, continuation: CheckedContinuation<Bool, Never>?)]())

    private init(subject: String, subscriber: any BusSubscriber) {
        self.subject = subject
        self.subscriber = subscriber
    }

    /// Subscribes a fresh inbox subject and starts reading it.
    static func open(bus: any Bus, subjects: Subjects, logger: Logger) async throws -> CommandInbox {
        let subscriber = try await bus.makeSubscriber()
        let inbox = CommandInbox(subject: subjects.inbox(randomHex(bytes: 8)), subscriber: subscriber)
        try await subscriber.subscribe([inbox.subject])
        Task {
            for await message in subscriber.messages {
                guard case .reply(let requestID)? = try? Envelope(decoding: message.payload) else {
                    logger.debug("ignoring a message on the helper inbox that is not a reply")
                    continue
                }
                inbox.received(requestID)
            }
        }
        return inbox
    }

    /// A new request id and its reply address.
    func makeAddress() -> ReplyAddress {
        ReplyAddress(subject: subject, requestID: randomHex(bytes: 8))
    }

    /// Waits until `count` replies for `requestID` arrived (`true`) or `timeout` passed (`false`).
    /// Call ``expect(_:count:)`` before publishing, so no reply arrives unexpected.
    func wait(for requestID: String, timeout: Duration) async -> Bool {
        await withCheckedContinuation { continuation in
            let done = pending.withLock { pending -> Bool in
                guard let entry = pending[requestID] else { return true }
                if entry.remaining <= 0 {
                    pending[requestID] = nil
                    return true
                }
                pending[requestID] = (entry.remaining, continuation)
                return false
            }
            if done {
                continuation.resume(returning: true)
                return
            }
            Task {
                try? await Task.sleep(for: timeout)
                self.finish(requestID, result: false)
            }
        }
    }

    /// Registers a request expecting `count` replies.
    func expect(_ requestID: String, count: Int) {
        pending.withLock { $0[requestID] = (count, nil) }
    }

    private func received(_ requestID: String) {
        let resume = pending.withLock { pending -> CheckedContinuation<Bool, Never>? in
            guard var entry = pending[requestID] else { return nil }
            entry.remaining -= 1
            pending[requestID] = entry
            guard entry.remaining <= 0, let continuation = entry.continuation else { return nil }
            pending[requestID] = nil
            return continuation
        }
        resume?.resume(returning: true)
    }

    private func finish(_ requestID: String, result: Bool) {
        let continuation = pending.withLock { $0.removeValue(forKey: requestID)?.continuation ?? nil }
        continuation?.resume(returning: result)
    }

    func close() async { await subscriber.close() }
}
