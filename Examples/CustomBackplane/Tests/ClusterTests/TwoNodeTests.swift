import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import ImCore
import ImTesting
import Testing

/// Two `imserver-shared-dir` processes on one shared directory: a client on one node gets what
/// a back-end sends through the other node's API.
@Suite("Two imserver-shared-dir nodes on one directory", .serialized)
struct TwoNodeTests {
    static let secret = "shared-dir-example-secret-0123456789abcdef"

    struct Node {
        let server: LocalServer
        let apiPort: Int
        var port: Int { server.port }
    }

    private func startNode(_ index: Int, directory: String) async throws -> Node {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("imserver-shared-dir")
        let port = try await freePort()
        let apiPort = try await freePort()
        let server = try await LocalServer.start(
            binary,
            arguments: [
                "--listen", "127.0.0.1:\(port)", "--api-listen", "127.0.0.1:\(apiPort)", "--node-id",
                "dir-node-\(index)",
                "--backplane-url", "shared-dir://\(directory)",
            ], environment: ["IM_TOKEN_SECRET": Self.secret, "IM_LEASE_TTL": "3", "IM_LOG_LEVEL": "error"], port: port)
        let node = Node(server: server, apiPort: apiPort)
        try await waitUntil(timeout: .seconds(10)) { await health(node) == 200 }
        return node
    }

    private func health(_ node: Node) async -> Int {
        guard let url = URL(string: "http://127.0.0.1:\(node.port)/health"),
            let (_, response) = try? await URLSession.shared.data(from: url)
        else { return 0 }
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    /// `POST /v1/messages` on `node`'s API; returns the answer's status and body.
    private func send(_ text: String, to user: String, via node: Node) async throws -> (Int, String) {
        var request = URLRequest(url: try #require(URL(string: "http://127.0.0.1:\(node.apiPort)/v1/messages")))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(#"{"from":"backend","to":["\#(user)"],"data":"\#(text)"}"#.utf8)
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    private func connect(_ user: String, to node: Node) async throws -> TestClient {
        let token = try await ConnectTokens(secret: Self.secret).mint(for: ClientID(rawValue: user))
        let client = try await TestClient.connect(to: "ws://127.0.0.1:\(node.port)/ws?token=\(token)")
        #expect(try await client.next(type: "ready")["client"]?.string == user)
        return client
    }

    @Test("a message sent through one node's API reaches a client on the other")
    func acrossNodes() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "im-two-nodes-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try await startNode(1, directory: directory)
        let second = try await startNode(2, directory: directory)

        let alice = try await connect("alice", to: second)
        let (status, body) = try await send("across", to: "alice", via: first)
        #expect(status == 200 && body.contains(#""offline":[]"#), "\(body)")
        #expect(try await alice.next(type: "message")["data"] == .string("across"))

        await alice.close()
        // (A failing test leaves them to ImTesting, which kills the servers it started at exit.)
        _ = try await first.server.stop()
        _ = try await second.server.stop()
    }
}
