import Foundation
import ImCore
import ImHelper
import ImTesting
import Synchronization

/// A client of the cluster that records, in the background, everything its node sends it:
/// each message id and how often it came, each receipt, the close frame. Tests read the record
/// instead of the frame stream, so a scenario can count what arrived while it goes on injecting
/// faults.
final class RecordingClient: Sendable {
    /// A receipt as the client got it.
    struct ReceiptRecord: Hashable, Sendable {
        var id: String
        var to: ClientID
        var status: String
    }

    /// A message as the client got it.
    struct MessageRecord: Sendable {
        var id: String
        var data: JSONValue?
        var channel: String?
    }

    private struct State {
        var counts: [String: Int] = [:]
        var messages: [MessageRecord] = []
        var receipts: [ReceiptRecord] = []
        var closeCode: UInt16?
        var ended = false
        var oddFrames: [String] = []
    }

    /// The connection, over either transport.
    enum Link: Sendable {
        case webSocket(TestClient)
        case eventStream(EventStreamClient)
    }

    let user: ClientID
    /// The index of the node it connected to.
    let node: Int
    let link: Link
    private let state = Mutex(State())
    private let reader = Mutex<Task<Void, Never>?>(nil)

    private init(user: ClientID, node: Int, link: Link) {
        self.user = user
        self.node = node
        self.link = link
    }

    /// Starts recording `link` (already past `ready`).
    static func start(_ link: Link, user: ClientID, node: Int) -> RecordingClient {
        let recording = RecordingClient(user: user, node: node, link: link)
        recording.reader.withLock { $0 = Task { await recording.read() } }
        return recording
    }

    private func read() async {
        while !Task.isCancelled {
            let frame: TestClient.Frame?
            do {
                frame = try await nextFrame()
            } catch {
                continue  // nothing for a second: look again, unless stopped
            }
            guard let frame else {
                state.withLock { $0.ended = true }
                return
            }
            record(frame)
        }
    }

    /// The next frame as a WebSocket frame (an event stream's `close` event as a close frame),
    /// `nil` once the connection ended; throws after a second without one.
    private func nextFrame() async throws -> TestClient.Frame? {
        switch link {
        case .webSocket(let client):
            return try await client.frames.next(timeout: .seconds(1))
        case .eventStream(let client):
            while true {
                switch try await client.events.next(timeout: .seconds(1)) {
                case nil: return nil
                case .frame(let text)?: return .text(text)
                case .close(let code, let reason)?: return .close(code: UInt16(clamping: code), reason: reason)
                case .ping?, .session?: continue
                }
            }
        }
    }

    private func record(_ frame: TestClient.Frame) {
        switch frame {
        case .text(let text):
            guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
                state.withLock { $0.oddFrames.append(text) }
                return
            }
            switch value["type"]?.string {
            case "message":
                guard let id = value["id"]?.string else { break }
                let message = MessageRecord(id: id, data: value["data"], channel: value["chan"]?.string)
                state.withLock { state in
                    state.counts[id, default: 0] += 1
                    state.messages.append(message)
                }
            case "receipt":
                guard let id = value["id"]?.string, let to = value["to"]?.string, let status = value["status"]?.string
                else { break }
                state.withLock { $0.receipts.append(ReceiptRecord(id: id, to: ClientID(rawValue: to), status: status)) }
            case "pong", "ready":
                break
            default:
                state.withLock { $0.oddFrames.append(text) }
            }
        case .binary:
            state.withLock { $0.oddFrames.append("binary frame") }
        case .close(let code, _):
            state.withLock { $0.closeCode = code ?? 1005 }
        }
    }

    // MARK: Reading the record

    /// How many times the message `id` arrived.
    func count(of id: String) -> Int { state.withLock { $0.counts[id] ?? 0 } }
    /// Whether the message `id` arrived.
    func received(_ id: String) -> Bool { count(of: id) > 0 }
    /// Every message id that arrived, with how often.
    var counts: [String: Int] { state.withLock { $0.counts } }
    /// Every message, in order.
    var messages: [MessageRecord] { state.withLock { $0.messages } }
    /// Every receipt, in order.
    var receipts: [ReceiptRecord] { state.withLock { $0.receipts } }
    /// The code of the node's close frame, once one came (1005 for a close frame without a code).
    var closeCode: UInt16? { state.withLock { $0.closeCode } }
    /// Whether the connection has ended (and everything it carried is recorded).
    var hasEnded: Bool { state.withLock { $0.ended } }
    /// Frames that were not a message, receipt, pong or ready.
    var oddFrames: [String] { state.withLock { $0.oddFrames } }
    /// Whether the socket is open.
    var isActive: Bool {
        switch link {
        case .webSocket(let client): client.isActive
        case .eventStream(let client): client.isActive
        }
    }

    /// Waits until the message `id` arrived.
    func waitForMessage(_ id: String, timeout: Duration = .seconds(10)) async throws {
        try await waitUntil(timeout: timeout) { self.received(id) }
    }

    /// Waits until a message with `data` arrived; returns it.
    @discardableResult
    func waitForMessage(data: JSONValue, timeout: Duration = .seconds(10)) async throws -> MessageRecord {
        var found: MessageRecord?
        try await waitUntil(timeout: timeout) {
            found = self.messages.first { $0.data == data }
            return found != nil
        }
        guard let found else { throw TimedOut(after: timeout) }
        return found
    }

    /// Waits until a receipt for `id` to `to` arrived; returns the first.
    @discardableResult
    func waitForReceipt(_ id: String, to: ClientID, timeout: Duration = .seconds(10)) async throws -> ReceiptRecord {
        var found: ReceiptRecord?
        try await waitUntil(timeout: timeout) {
            found = self.receipts.first { $0.id == id && $0.to == to }
            return found != nil
        }
        guard let found else { throw TimedOut(after: timeout) }
        return found
    }

    // MARK: Ending

    /// Closes like a browser (a WebSocket: close frame, then waits for the node's answer; an
    /// event stream: closes its socket); recording stops once the connection ended. Returns
    /// whether it ended in time.
    @discardableResult
    func close() async -> Bool {
        switch link {
        case .webSocket(let client):
            return await client.closeGracefully()
        case .eventStream(let client):
            await client.close()
            return true
        }
    }

    /// Stops recording and drops the socket (teardown).
    func stop() async {
        reader.withLock { $0?.cancel() }
        switch link {
        case .webSocket(let client): await client.close()
        case .eventStream(let client): await client.close()
        }
    }
}

/// Every online/offline event a helper saw, from when it started.
final class EventLog: Sendable {
    private let events = Mutex<[PresenceEvent]>([])
    private let reader = Mutex<Task<Void, Never>?>(nil)

    private init() {}

    static func start(_ helper: ImHelper) async throws -> EventLog {
        let log = EventLog()
        let stream = try await helper.events()
        log.reader.withLock {
            $0 = Task {
                for await event in stream { log.events.withLock { $0.append(event) } }
            }
        }
        return log
    }

    var all: [PresenceEvent] { events.withLock { $0 } }

    /// How many `kind` events for `client` arrived.
    func count(_ kind: PresenceEvent.Kind, _ client: ClientID) -> Int {
        events.withLock { events in events.count(where: { $0.kind == kind && $0.client == client }) }
    }

    /// Waits until at least `count` `kind` events for `client` arrived.
    func waitFor(_ kind: PresenceEvent.Kind, _ client: ClientID, count: Int = 1, timeout: Duration) async throws {
        try await waitUntil(timeout: timeout) { self.count(kind, client) >= count }
    }

    func stop() { reader.withLock { $0?.cancel() } }
}

/// The messages a test sent to users with receipts, and the check of what the cluster said
/// about them: receipts the sender's client got, messages the receivers' clients got.
final class DeliveryLedger: Sendable {
    /// One send.
    struct Sent: Sendable {
        var id: String
        var receivers: [ClientID]
        /// Receivers the helper's send result listed as offline.
        var offline: Set<ClientID>
        /// When the send was started and when it returned.
        var started: ContinuousClock.Instant
        var answered: ContinuousClock.Instant
    }

    let sender: ClientID
    private let sent = Mutex<[Sent]>([])
    private let failed = Mutex<[String]>([])

    init(sender: ClientID) { self.sender = sender }

    /// Sends `text` with receipts from ``sender`` to `receivers` and records it (a send that
    /// throws is recorded as failed and rethrown).
    @discardableResult
    func send(_ helper: ImHelper, _ text: String, to receivers: [ClientID]) async throws -> Sent {
        let started = ContinuousClock.now
        do {
            let result = try await helper.send(.text(text), from: sender, to: receivers, receipt: true)
            let record = Sent(
                id: result.id, receivers: receivers, offline: Set(result.offline), started: started,
                answered: .now)
            sent.withLock { $0.append(record) }
            return record
        } catch {
            failed.withLock { $0.append("\(error)") }
            throw error
        }
    }

    /// Every send that returned, in order.
    var all: [Sent] { sent.withLock { $0 } }
    /// The errors of sends that threw.
    var failures: [String] { failed.withLock { $0 } }

    /// Waits (up to `timeout`) until the record is complete enough to judge: every (message,
    /// receiver in `strict`) has a delivered or offline receipt, and every message reported
    /// `delivered` has arrived at its receiver, unless all of the receiver's connections ended.
    /// Returns whether it settled; the audit tells what is missing either way.
    @discardableResult
    func settle(
        sender client: RecordingClient, receivers: [RecordingClient], strict: Set<ClientID>, timeout: Duration
    ) async -> Bool {
        (try? await waitUntil(timeout: timeout) {
            let audit = self.audit(sender: client, receivers: receivers)
            let unanswered = audit.missing.contains { strict.contains($0.to) }
            return !unanswered && audit.deliveredNotYetReceived(receivers).isEmpty
        }) != nil
    }

    /// Judges the record. Anything in ``Audit/lies`` is a false statement by the cluster.
    func audit(sender client: RecordingClient, receivers: [RecordingClient]) -> Audit {
        let sends = all
        let byUser = Dictionary(grouping: receivers, by: \.user)
        var audit = Audit()
        var verdicts: [Audit.Key: [String]] = [:]
        let index = Dictionary(sends.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for receipt in client.receipts where receipt.status == "delivered" || receipt.status == "offline" {
            // Receipts for messages of other ledgers (or other helpers) are not this ledger's to judge.
            guard let send = index[receipt.id] else { continue }
            guard send.receivers.contains(receipt.to) else {
                audit.lies.append("receipt \(receipt.status) for \(receipt.id) about \(receipt.to), not a receiver")
                continue
            }
            verdicts[Audit.Key(id: receipt.id, to: receipt.to), default: []].append(receipt.status)
        }
        for send in sends {
            for receiver in send.receivers {
                let key = Audit.Key(id: send.id, to: receiver)
                let clients = byUser[receiver] ?? []
                let copies = clients.map { $0.count(of: send.id) }
                let got = copies.contains { $0 > 0 }
                var tally = audit.tallies[receiver] ?? Audit.Tally()
                tally.addressed += 1
                if got { tally.received += 1 }
                if copies.contains(where: { $0 > 1 }) {
                    audit.lies.append("\(send.id) arrived \(copies.max() ?? 0) times at one connection of \(receiver)")
                }
                let statuses = verdicts[key] ?? []
                if statuses.count > 1 {
                    audit.lies.append("\(statuses.count) receipts for \(send.id) to \(receiver): \(statuses)")
                }
                switch statuses.first {
                case "delivered":
                    tally.delivered += 1
                    audit.delivered.append(key)
                    if send.offline.contains(receiver) {
                        audit.lies.append("\(send.id) to \(receiver): the helper said offline, a node said delivered")
                    }
                case "offline":
                    tally.offline += 1
                    if got && clients.count == 1 {
                        audit.lies.append("\(send.id) to \(receiver): receipt offline, but it arrived")
                    }
                default:
                    tally.missing += 1
                    audit.missing.append(key)
                }
                if got && send.offline.contains(receiver) && clients.count == 1 {
                    audit.lies.append("\(send.id) to \(receiver): the helper said offline, but it arrived")
                }
                audit.tallies[receiver] = tally
            }
        }
        let sentIDs = Set(sends.map(\.id))
        for receiver in receivers {
            for id in receiver.counts.keys where sentIDs.contains(id) {
                if let send = index[id], !send.receivers.contains(receiver.user) {
                    audit.lies.append("\(id) arrived at \(receiver.user), not one of its receivers")
                }
            }
        }
        audit.receivedByUser = Dictionary(
            byUser.map { user, clients in
                (user, clients.reduce(into: Set<String>()) { $0.formUnion($1.counts.keys) })
            }, uniquingKeysWith: { first, _ in first })
        for key in audit.delivered where !(audit.receivedByUser[key.to]?.contains(key.id) ?? false) {
            audit.lies.append("\(key.id) to \(key.to): receipt delivered, but it never arrived")
        }
        return audit
    }
}

/// What ``DeliveryLedger/audit(sender:receivers:)`` found.
struct Audit: CustomStringConvertible {
    struct Key: Hashable, Sendable, CustomStringConvertible {
        var id: String
        var to: ClientID
        var description: String { "\(id)→\(to)" }
    }

    /// Per receiver: messages addressed to it, receipts delivered / offline / none, messages arrived.
    struct Tally: Equatable, CustomStringConvertible {
        var addressed = 0
        var delivered = 0
        var offline = 0
        var missing = 0
        var received = 0

        var description: String {
            "sent \(addressed): delivered \(delivered), offline \(offline), no receipt \(missing); arrived \(received)"
        }
    }

    var tallies: [ClientID: Tally] = [:]
    /// False statements: two verdicts for one message and receiver, `delivered` for what never
    /// arrived, `offline` for what arrived (at a receiver's only connection), a message at a
    /// connection twice or at someone it was not for, a receipt about someone the message was
    /// not for.
    var lies: [String] = []
    /// (message, receiver) with no delivered or offline receipt.
    var missing: [Key] = []
    /// (message, receiver) reported delivered.
    var delivered: [Key] = []
    /// The ids each receiver's connections got.
    var receivedByUser: [ClientID: Set<String>] = [:]

    func tally(_ user: ClientID) -> Tally { tallies[user] ?? Tally() }

    /// Delivered receipts whose message has not arrived yet at a receiver that is still connected.
    func deliveredNotYetReceived(_ receivers: [RecordingClient]) -> [Key] {
        let open = Set(receivers.filter { !$0.hasEnded }.map(\.user))
        return delivered.filter { open.contains($0.to) && !(receivedByUser[$0.to]?.contains($0.id) ?? false) }
    }

    var description: String {
        let rows = tallies.keys.sorted().map { "\($0): \(tallies[$0] ?? Tally())" }
        var text = rows.joined(separator: "; ")
        if !lies.isEmpty { text += "; \(lies.count) lies, first: \(lies.prefix(5))" }
        if !missing.isEmpty { text += "; \(missing.count) without receipt, first: \(missing.prefix(5))" }
        return text
    }
}
