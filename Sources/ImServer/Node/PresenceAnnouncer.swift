import Foundation
import ImCore
import Logging

/// Publishes users' `online` and `offline` events on the bus, for helpers.
struct PresenceAnnouncer: Sendable {
    let bus: any Bus
    let subjects: Subjects
    let logger: Logger

    /// Publishes that `record`'s user came online or went offline; a failure is logged.
    func announce(_ kind: PresenceEvent.Kind, _ record: ConnectionRecord) async {
        let event = PresenceEvent(
            kind: kind, client: record.client, node: record.node, meta: record.meta,
            timestamp: Int64(Date().timeIntervalSince1970 * 1000))
        do {
            try await bus.publish(Envelope.event(event).encoded(), to: subjects.events)
        } catch {
            logger.warning(
                "could not publish \(kind) event", metadata: ["client": "\(record.client)", "error": "\(error)"])
        }
    }
}
