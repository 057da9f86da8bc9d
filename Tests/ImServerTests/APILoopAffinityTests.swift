import Hummingbird
import ImBackplane
import ImCore
import ImTesting
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import ImServerAPI

/// A send through the server API stays on the event loop of the request's connection: the
/// handler's task, the send queue's batch and the backplane call all run there, so a backplane
/// whose I/O is on that loop (Redis) resumes them without waking another thread.
@Suite("Server API: a request's send runs on its connection's event loop")
struct APILoopAffinityTests {
    /// A bus that records, for each publish, its subjects and whether it was made on an event
    /// loop's thread.
    private final class ThreadRecordingBus: Bus {
        let base = MemoryBus()
        let publishes = Mutex<[(subjects: [String], onLoop: Bool)]>([])

        private func record(_ subjects: [String]) {
            let onLoop = MultiThreadedEventLoopGroup.currentEventLoop != nil
            publishes.withLock { $0.append((subjects, onLoop)) }
        }

        func publish(_ message: ByteBuffer, to subject: String) async throws {
            record([subject])
            try await base.publish(message, to: subject)
        }

        func publish(_ batch: [BusMessage]) async throws {
            record(batch.map(\.subject))
            try await base.publish(batch)
        }

        func makeSubscriber() async throws -> any BusSubscriber { try await base.makeSubscriber() }
        var health: BackplaneHealth { base.health }
        func run() async throws { try await base.run() }
    }

    @Test func channelAndUserSendsPublishFromTheLoop() async throws {
        let bus = ThreadRecordingBus()
        try await TestCluster.with(backplane: Backplane(bus: bus, presence: MemoryPresence())) { cluster in
            // The API stops as the block ends, before the publishes are read.
            try await cluster.withServerAPI(configuration: ServerAPIConfiguration(port: 0)) { port in
                let bob = try await cluster.session("bob")
                for number in 1...5 {
                    let toRoom = try await httpRequest(
                        "POST", "http://127.0.0.1:\(port)/v1/channels/room/messages",
                        body: #"{"from":"a","data":\#(number)}"#)
                    #expect(toRoom.status == 200)
                    let toBob = try await httpRequest(
                        "POST", "http://127.0.0.1:\(port)/v1/messages",
                        body: #"{"from":"a","to":["bob"],"data":\#(number)}"#)
                    #expect(toBob.status == 200)
                    #expect(try await bob.nextMessage().json == String(number))
                }
            }
            let sends = bus.publishes.withLock { $0 }.filter { record in
                record.subjects.contains { $0.hasSuffix(".chan.room") || $0.contains(".node.") }
            }
            #expect(sends.count >= 10)
            let offLoop = sends.filter { !$0.onLoop }.map(\.subjects)
            #expect(offLoop.isEmpty, "published off the loops: \(offLoop)")
        }
    }
}
