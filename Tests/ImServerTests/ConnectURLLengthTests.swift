import ImCore
import ImHelper
import ImServer
import ImTesting
import Testing

/// A connect URL the helper mints is always one the node accepts.
@Suite("Connect URL length")
struct ConnectURLLengthTests {
    @Test("a meta over the maximum, or one that escapes into too long a URL, is refused with a typed error")
    func tooLong() async throws {
        try await TestCluster.with { cluster in
            let long = String(repeating: "m", count: ImHelper.maximumMetaLength + 1)
            await #expect(throws: HelperError.metaTooLong(length: 2049, maximum: 2048)) {
                _ = try await cluster.helper.connectURL(for: "alice", meta: long)
            }
            let escaped = String(repeating: "\u{1}", count: ImHelper.maximumMetaLength)
            do {
                _ = try await cluster.helper.connectURL(for: "alice", meta: escaped)
                Issue.record("a meta that JSON escapes six-fold made a URL")
            } catch let error as HelperError {
                guard case .connectURLTooLong(let length, let maximum) = error else {
                    Issue.record("\(error)")
                    return
                }
                #expect(length > maximum)
                #expect(error.description.contains("8192"))
            }
        }
    }

    @Test("a meta of the maximum length makes a URL the node accepts, meta intact")
    func longestAccepted() async throws {
        try await TestCluster.with { cluster in
            let meta = String(repeating: "é", count: ImHelper.maximumMetaLength / 2)
            let url = try await cluster.helper.connectURL(for: "alice", meta: meta)
            #expect(url.utf8.count <= ImHelper.maximumConnectURLLength)
            let events = try await cluster.helper.events()
            let client = try await TestClient.connect(to: url)
            #expect(try await client.next(type: "ready")["client"]?.string == "alice")
            var iterator = events.makeAsyncIterator()
            #expect(await iterator.next()?.meta == meta)
            await client.close()
        }
    }
}
