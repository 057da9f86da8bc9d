import Foundation
import ImCore
import ImHelper
import ImServer
import ImTesting
import Logging
import NIOCore
import Testing

@testable import ImServerAPI

/// `GET /v1/events` holds a bounded backlog per reader.
@Suite("Server-sent events backpressure")
struct EventStreamTests {
    static let key = "event-stream-api-key-0123456789"

    /// Runs `body` with a one-node cluster and its API on a free port (its event limits set by
    /// `limits`), and the reasons of the readers it disconnects; stops both whatever happens.
    private func withAPI(
        limits: (inout EventStreamLimits) -> Void,
        _ body: (TestCluster, _ port: Int, _ disconnects: AsyncQueue<String>) async throws -> Void
    ) async throws {
        try await TestCluster.with { cluster in
            var configuration = ServerAPIConfiguration(port: 0, apiKey: Self.key)
            limits(&configuration.eventLimits)
            let disconnects = AsyncQueue<String>()
            configuration.eventLimits.onDisconnect = { disconnects.push($0) }
            try await cluster.withServerAPI(configuration: configuration, health: { .up }) { port in
                try await body(cluster, port, disconnects)
            }
        }
    }

    @Test("a reader that stops reading is disconnected once it falls behind; a reader that reads gets every event")
    func stalledReaderIsDisconnected() async throws {
        try await withAPI(limits: {
            $0.maximumBacklog = 1000
            $0.maximumBacklogBytes = 1024 * 1024
            $0.closeGrace = .milliseconds(200)
        }) { cluster, port, disconnects in
            let request = "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(Self.key)\r\n\r\n"
            let stalled = try await StreamingHTTP.open(port: port, request: request, receiveBuffer: 4096)
            _ = try await stalled.read(until: ": connected")
            try await stalled.pause()
            let reader = try await StreamingHTTP.open(port: port, request: request)
            _ = try await reader.read(until: ": connected")

            // 100 batches of 100 events of about 2 KiB: 20 MiB, far more than socket buffers hold.
            let meta = String(repeating: "m", count: 2000)
            let subjects = Subjects()
            let batches = 100
            let perBatch = 100
            var received = 0
            for batch in 0..<batches {
                let messages = (0..<perBatch).map { index in
                    let event = PresenceEvent(
                        kind: .online, client: ClientID(rawValue: "u\(batch)-\(index)"),
                        node: "n1", meta: meta, timestamp: 1)
                    return BusMessage(subject: subjects.events, payload: Envelope.event(event).encoded())
                }
                try await cluster.backplane.bus.publish(messages)
                received += try await reader.skip(
                    until: #""client":"u\#(batch)-\#(perBatch - 1)""#, counting: "event: online")
            }
            #expect(received == batches * perBatch, "the reading reader gets every event")
            #expect(try await disconnects.next(timeout: .seconds(10))?.contains("reader fell more than") == true)

            try await stalled.resume()
            let rest = try await stalled.readToEnd(timeout: .seconds(20))
            let delivered = rest.components(separatedBy: "event: online").count - 1
            #expect(delivered < batches * perBatch / 2, "the stalled reader was cut off (got \(delivered))")
            await stalled.close()
            await reader.close()
        }
    }

    @Test("a reader that falls behind but reads again within the grace gets the reason")
    func slowReaderGetsReason() async throws {
        try await withAPI(limits: {
            $0.maximumBacklog = 10
            $0.closeGrace = .seconds(30)
        }) { cluster, port, disconnects in
            let stream = try await StreamingHTTP.open(
                port: port,
                request: "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(Self.key)\r\n\r\n",
                receiveBuffer: 4096)
            _ = try await stream.read(until: ": connected")
            try await stream.pause()
            // 5000 events of about 2 KiB while the reader reads nothing: more than the socket buffers hold.
            let subjects = Subjects()
            let messages = (0..<5000).map { index in
                let event = PresenceEvent(
                    kind: .offline, client: ClientID(rawValue: "u\(index)"), node: "n1",
                    meta: String(repeating: "x", count: 2000), timestamp: 1)
                return BusMessage(subject: subjects.events, payload: Envelope.event(event).encoded())
            }
            try await cluster.backplane.bus.publish(messages)
            #expect(try await disconnects.next(timeout: .seconds(10)) != nil)
            try await stream.resume()
            // The response ends after the reason (keep-alive may keep the connection open).
            let delivered = try await stream.skip(
                until: ": disconnected: reader fell more than 10 events",
                counting: "event: offline")
            #expect(delivered < 5000)
            await stream.close()
        }
    }
}
