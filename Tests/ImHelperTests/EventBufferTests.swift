import ImCore
import ImHelper
import ImTesting
import Testing

/// The helper's event streams hold a bounded number of events for a consumer that lags.
@Suite("Helper event buffer")
struct EventBufferTests {
    private func publish(_ clients: Range<Int>, on cluster: TestCluster) async throws {
        let messages = clients.map { index in
            let event = PresenceEvent(
                kind: .online, client: ClientID(rawValue: "u\(index)"), node: "n1", meta: nil,
                timestamp: Int64(index))
            return BusMessage(subject: Subjects().events, payload: Envelope.event(event).encoded())
        }
        try await cluster.backplane.bus.publish(messages)
    }

    @Test("a stream nobody reads keeps only the newest events and counts the dropped ones")
    func boundedBuffer() async throws {
        try await TestCluster.with { cluster in
            let events = try await cluster.helper.events(bufferLimit: 5)
            try await publish(0..<20, on: cluster)
            try await waitUntil { cluster.helper.droppedEvents == 15 }
            var iterator = events.makeAsyncIterator()
            var kept: [String] = []
            for _ in 0..<5 { if let event = await iterator.next() { kept.append(event.client.rawValue) } }
            #expect(kept == ["u15", "u16", "u17", "u18", "u19"])
        }
    }

    @Test("a stream that is read loses nothing; the default buffer comes from the configuration")
    func readStreamLosesNothing() async throws {
        #expect(HelperConfiguration().eventBufferLimit == 10_000)
        try await TestCluster.with { cluster in
            let events = try await cluster.helper.events()
            try await publish(0..<100, on: cluster)
            var count = 0
            for await _ in events {
                count += 1
                if count == 100 { break }
            }
            #expect(count == 100)
            #expect(cluster.helper.droppedEvents == 0)
        }
    }
}
