import ImClient
import ImCore
import ImHelper
import ImTesting
import Testing

/// Checks that the cluster's first node still serves a fresh user end to end: it connects
/// (with the Swift client, as an app would), and a broadcast reaches it.
func expectStillServing(_ cluster: TestCluster) async throws {
    let probe = try await cluster.session(ClientID(rawValue: "probe-\(Int.random(in: 0..<1_000_000))"))
    let result = try await cluster.helper.broadcast(.text("still serving"))
    #expect(try await probe.nextMessage().id == result)
    await probe.close()
}
