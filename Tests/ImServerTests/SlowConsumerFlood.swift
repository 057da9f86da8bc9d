import ImCore
import ImHelper
import ImTesting
import Testing

/// Sends 32 KiB messages to `slow` (a client that stopped reading) until node 0 of `cluster`
/// closes a connection as a slow consumer (4008), at most 2,000; after every 50 it checks that
/// `fast` (read through `reader`) still gets its messages. Returns once the close is counted.
func floodUntilSlowConsumer(
    _ cluster: TestCluster, slow: ClientID, fast: ClientID, reader: some JSONFrameReading
) async throws {
    let chunk = try JSONPayload(encoding: String(repeating: "z", count: 32 * 1024))
    let stats = cluster.nodes[0].node.core.stats
    var sent = 0
    while stats.closes(.slowConsumer) == 0 && sent < 2000 {
        try await cluster.helper.send(chunk, from: "firehose", to: [slow])
        sent += 1
        if sent % 50 == 0 {
            try await cluster.helper.send(.text("for fast"), from: "x", to: [fast])
            #expect(try await reader.next(type: "message")["data"] == .string("for fast"))
        }
    }
    try await waitUntil { stats.closes(.slowConsumer) == 1 }
}
