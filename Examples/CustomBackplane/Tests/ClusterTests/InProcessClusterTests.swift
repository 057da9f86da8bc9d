import Foundation
import ImBackplane
import ImCore
import ImHelper
import ImSharedDirectory
import ImTesting
import Testing

/// Two nodes and a helper in the test process sharing one `shared-dir://` backplane: the whole
/// path through the plugin (bus, presence, the scheme's registration), without starting processes.
@Suite("TestCluster on a shared-dir:// backplane")
struct InProcessClusterTests {
    @Test("messages, receipts, channels and events cross nodes over shared-dir://")
    func endToEnd() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("im-e2e-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var factory = BackplaneFactory()
        factory.registerSharedDirectory()
        let url = "shared-dir://\(directory.path)"  // shared-dir:///tmp/im-e2e-…
        let backplane = try await factory.makeBackplane(url: url, logger: .init(label: "e2e"))
        // TestCluster runs the backplane itself (do not run it here), and stops it after the
        // closure, also when the test fails.
        try await TestCluster.with(nodes: 2, backplane: backplane) { cluster in
            let events = try await EventRecorder.start(cluster.helper)

            let alice = try await cluster.connect("alice", node: 0, meta: "web")  // waits for "ready"
            let online = try await events.next()
            #expect(online.kind == .online && online.client == "alice" && online.meta == "web")
            let bob = try await cluster.connect("bob", node: 1)
            _ = try await events.next()

            let result = try await cluster.helper.send(.text("hi"), from: "alice", to: ["bob", "zed"], receipt: true)
            #expect(result.offline == ["zed"])
            let message = try await bob.next(type: "message")
            #expect(message["id"]?.string == result.id)
            #expect(message["data"] == .string("hi"))
            var statuses: Set<String> = []
            for _ in 0..<2 { statuses.insert(try await alice.next(type: "receipt")["status"]?.string ?? "") }
            #expect(statuses == ["delivered", "offline"])

            try await cluster.helper.join("bob", channels: ["room"])
            let id = try await cluster.helper.send(.text("hello room"), from: "alice", toChannel: "room")
            #expect(try await bob.next(type: "message")["id"]?.string == id)

            try await cluster.helper.forceOffline("bob")
            #expect(try await bob.closeCode() == 4003)
            #expect(try await events.next().kind == .offline)

            events.stop()
            await alice.close()
        }
    }
}
