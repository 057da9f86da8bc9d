import CoreMetrics
import ImCore
import NIOCore
import ServiceLifecycle

/// The node's view of its bus: publishes forwarded to `inner`, timed by ``BackplaneMeters``
/// and counted in `imserver_bus_messages_out_total`. Running it runs nothing: the bus's owner
/// runs `inner`.
struct MeasuredBus: Bus {
    let inner: any Bus
    let meters: BackplaneMeters
    let published = Counter(label: "imserver_bus_messages_out_total")

    var health: BackplaneHealth { inner.health }
    func run() async throws {}

    func publish(_ message: ByteBuffer, to subject: String) async throws {
        try await meters.measure("publish") { try await inner.publish(message, to: subject) }
        published.increment()
    }

    func publish(_ batch: [BusMessage]) async throws {
        try await meters.measure("publish") { try await inner.publish(batch) }
        published.increment(by: batch.count)
    }

    func makeSubscriber() async throws -> any BusSubscriber { try await inner.makeSubscriber() }
}
