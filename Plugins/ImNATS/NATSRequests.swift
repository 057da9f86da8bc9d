import CNATS
import ImBackplane
import NIOCore
import NIOPosix
import Synchronization

/// One request for ``NATSRequests``: a message to `subject`, answered on the requests' inbox.
struct NATSRequest: Sendable {
    var subject: String
    var headers: [(String, String)] = []
    var payload: [UInt8] = []
}

/// Many requests in flight on one connection: every request of a batch is published at once
/// (nats.c writes them out together) and the replies come back on one inbox subscription, so a
/// batch of a thousand key reads costs about one round trip and no thread waits for it.
///
/// A batch fails as a whole (``BackplaneError``) when a request cannot be published or its
/// replies do not all arrive within the command timeout; nothing waits longer than that.
final class NATSRequests: Sendable {
    /// Batches waiting for replies, by request number; nats.c's callback thread and callers
    /// share it under its lock.
    final class Router: Sendable {
        let waiting = Mutex<[UInt64: (batch: PendingBatch, index: Int)]>([:])

        /// Hands the reply to request `number` to its batch (unknown numbers, late replies to
        /// a batch that timed out, are dropped).
        func deliver(_ reply: NATSReply, to number: UInt64) {
            guard let target = waiting.withLock({ $0.removeValue(forKey: number) }) else { return }
            target.batch.receive(reply, at: target.index)
        }
    }

    private let client: NATSClient
    private let inbox: String
    private let router = Router()
    private let nextNumber = Atomic<UInt64>(1)
    private let timeout: TimeAmount
    private let subscription: NATSHandle

    /// Subscribes a fresh inbox on `client`'s connection (nats.c subscribes it again after a
    /// reconnect).
    init(client: NATSClient) throws(BackplaneError) {
        self.client = client
        inbox = "_INBOX.im" + randomHex(bytes: 8) + "."
        timeout = .milliseconds(client.configuration.commandTimeoutMilliseconds)
        let closure = Unmanaged.passRetained(router).toOpaque()
        do {
            let pointer = try client.subscribe(
                inbox + "*", handler: receiveReply, closure: closure, completed: releaseRouter)
            subscription = NATSHandle(pointer: pointer)
        } catch {
            Unmanaged<Router>.fromOpaque(closure).release()
            throw error
        }
    }

    deinit { client.unsubscribe(subscription.pointer) }

    /// Sends every request and returns their replies in order; `operation` names the batch in
    /// a timeout's error.
    func send(_ requests: [NATSRequest], operation: String) async throws(BackplaneError) -> [NATSReply] {
        guard !requests.isEmpty else { return [] }
        let first = nextNumber.add(UInt64(requests.count), ordering: .relaxed).newValue - UInt64(requests.count)
        let batch = PendingBatch(count: requests.count)
        router.waiting.withLock { waiting in
            for index in requests.indices { waiting[first + UInt64(index)] = (batch, index) }
        }
        let numbers = (0..<UInt64(requests.count)).map { first + $0 }
        let router = self.router
        let timeout = self.timeout
        do {
            return try await withCheckedThrowingContinuation { continuation in
                batch.start(continuation)
                let timer = MultiThreadedEventLoopGroup.singleton.next().scheduleTask(in: timeout) {
                    router.waiting.withLock { waiting in for number in numbers { waiting[number] = nil } }
                    batch.fail(BackplaneError.timedOut(operation: "nats \(operation)"))
                }
                batch.setTimer(timer)
                for (index, request) in requests.enumerated() {
                    do throws(BackplaneError) {
                        try client.publish(
                            request.payload, to: request.subject, reply: inbox + String(numbers[index]),
                            headers: request.headers)
                    } catch {
                        router.waiting.withLock { waiting in for number in numbers { waiting[number] = nil } }
                        batch.fail(error)
                        return
                    }
                }
            }
        } catch let error as BackplaneError {
            throw error
        } catch {
            throw BackplaneError.unavailable("nats: \(error)")
        }
    }
}

/// The replies of one batch, and the caller waiting for them.
final class PendingBatch: Sendable {
    private struct State {
        var replies: [NATSReply?]
        var remaining: Int
        var continuation: CheckedContinuation<[NATSReply], any Error>?
        var timer: Scheduled<Void>?
        var done = false
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(replies: Array(repeating: nil, count: count), remaining: count))
    }

    func start(_ continuation: CheckedContinuation<[NATSReply], any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    func setTimer(_ timer: Scheduled<Void>) {
        let cancel = state.withLock { state -> Bool in
            if state.done { return true }
            state.timer = timer
            return false
        }
        if cancel { timer.cancel() }
    }

    func receive(_ reply: NATSReply, at index: Int) {
        let finished = state.withLock {
            state -> (CheckedContinuation<[NATSReply], any Error>, [NATSReply], Scheduled<Void>?)? in
            guard !state.done, state.replies[index] == nil else { return nil }
            state.replies[index] = reply
            state.remaining -= 1
            guard state.remaining == 0, let continuation = state.continuation else { return nil }
            state.done = true
            return (continuation, state.replies.compactMap { $0 }, state.timer)
        }
        guard let (continuation, replies, timer) = finished else { return }
        timer?.cancel()
        continuation.resume(returning: replies)
    }

    func fail(_ error: BackplaneError) {
        let waiting = state.withLock { state -> (CheckedContinuation<[NATSReply], any Error>, Scheduled<Void>?)? in
            guard !state.done, let continuation = state.continuation else { return nil }
            state.done = true
            return (continuation, state.timer)
        }
        guard let (continuation, timer) = waiting else { return }
        timer?.cancel()
        continuation.resume(throwing: error)
    }
}

/// nats.c's callback for the inbox: reads the reply and hands it to its batch.
private func receiveReply(
    _ connection: OpaquePointer?, _ subscription: OpaquePointer?, _ message: OpaquePointer?,
    _ closure: UnsafeMutableRawPointer?
) {
    guard let message else { return }
    defer { natsMsg_Destroy(message) }
    guard let closure, let subject = natsMsg_GetSubject(message) else { return }
    let router = Unmanaged<NATSRequests.Router>.fromOpaque(closure).takeUnretainedValue()
    let text = String(cString: subject)
    guard let dot = text.lastIndex(of: "."), let number = UInt64(text[text.index(after: dot)...]) else { return }
    router.deliver(NATSReply(message), to: number)
}

/// nats.c's completion callback for the inbox subscription.
private func releaseRouter(_ closure: UnsafeMutableRawPointer?) {
    guard let closure else { return }
    Unmanaged<NATSRequests.Router>.fromOpaque(closure).release()
}
