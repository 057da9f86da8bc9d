import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import ImCore
import ImHelper
import ImTesting
import Logging
import Synchronization

/// Real `imserver` processes on one backplane server (a ``ClusterBackend``), an in-process
/// ImHelper on the same backplane, and every client the test opened.
///
/// Use it through ``with(_:persistent:nodes:leaseTTL:_:)``: that stops everything (clients,
/// nodes, helper, backplane server) however the test ends, failing or not.
final class ProcessCluster: Sendable {
    static let secret = "integration-secret-0123456789abcdef0123"

    let backend: any ClusterBackend
    /// The node processes; node `i` has the id `node-<i+1>`.
    let nodes: [LocalServer]
    let apiPorts: [Int]
    let helper: ImHelper
    let leaseTTL: Duration
    private let backplaneRunner: ServiceRunner
    private let clients = Mutex<[RecordingClient]>([])

    private init(
        backend: any ClusterBackend, nodes: [LocalServer], apiPorts: [Int], helper: ImHelper, leaseTTL: Duration,
        backplaneRunner: ServiceRunner
    ) {
        self.backend = backend
        self.nodes = nodes
        self.apiPorts = apiPorts
        self.helper = helper
        self.leaseTTL = leaseTTL
        self.backplaneRunner = backplaneRunner
    }

    /// Where the nodes write their logs (at level info), named by `IM_IT_LOG_DIR`; without it
    /// their output is dropped.
    static var logDirectory: URL? {
        ProcessInfo.processInfo.environment["IM_IT_LOG_DIR"].map { URL(fileURLWithPath: $0) }
    }

    /// The `imserver` binary built next to the test bundle.
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("imserver")
    }

    /// Starts the backplane server of `row`, `count` nodes on it (lease `leaseTTL`) and a
    /// helper, runs `body`, and stops all of it whatever `body` does.
    static func with<T>(
        _ row: BackendRow, persistent: Bool = false, nodes count: Int = 3, leaseTTL: Duration = .seconds(2),
        _ body: (ProcessCluster) async throws -> T
    ) async throws -> T {
        let backend = try await row.start(persistent)
        var nodes: [LocalServer] = []
        var runner: ServiceRunner?
        let cluster: ProcessCluster
        do {
            var apiPorts: [Int] = []
            for index in 1...count {
                let port = try await freePort()
                let apiPort = try await freePort()
                apiPorts.append(apiPort)
                nodes.append(
                    try await LocalServer.start(
                        binary,
                        arguments: [
                            "--listen", "127.0.0.1:\(port)", "--api-listen", "127.0.0.1:\(apiPort)",
                            "--node-id", "node-\(index)", "--backplane-url", backend.url, "--threads", "2",
                        ],
                        environment: [
                            "IM_TOKEN_SECRET": secret, "IM_LEASE_TTL": String(leaseTTL.inSeconds),
                            "IM_LOG_LEVEL": logDirectory == nil ? "warning" : "info",
                        ],
                        port: port, stopGrace: .seconds(10),
                        log: logDirectory?.appendingPathComponent("node-\(index).log")))
            }
            let logger = Logger(label: "it-helper")
            let backplane = try backend.makeBackplane(logger: logger)
            let started = ServiceRunner(service: backplane, logger: logger)
            runner = started
            let helper = ImHelper(backplane: backplane, tokens: try await ConnectTokens(secret: secret))
            cluster = ProcessCluster(
                backend: backend, nodes: nodes, apiPorts: apiPorts, helper: helper, leaseTTL: leaseTTL,
                backplaneRunner: started)
            try await waitUntil(timeout: .seconds(10)) { backplane.health.isUp }
            // A node admits connections once linked to the backplane (its /health says 200), and
            // has settled once its backplane watch has seen the backplane up (the metric): a fault
            // injected before that would meet a node still starting.
            try await cluster.waitForHealth(200, timeout: .seconds(15))
            for node in nodes.indices {
                try await waitUntil(timeout: .seconds(10)) {
                    await cluster.metrics(node: node).contains("imserver_backplane_up 1.0")
                }
            }
        } catch {
            for node in nodes { try? await node.kill() }
            try? await runner?.stop()
            await backend.stop()
            throw error
        }
        do {
            let result = try await body(cluster)
            await cluster.stop()
            return result
        } catch {
            await cluster.stop()
            throw error
        }
    }

    /// Stops every client, node, the helper and the backplane server.
    private func stop() async {
        try? backend.resume()
        for client in clients.withLock({ $0 }) { await client.stop() }
        for node in nodes where node.isRunning { try? await node.kill() }
        await helper.close()
        try? await backplaneRunner.stop()
        await backend.stop()
    }

    /// The id of node `index`.
    func nodeID(_ index: Int) -> String { "node-\(index + 1)" }

    // MARK: Clients

    /// A connect URL with a fresh token for `user` on node `node`.
    func url(for user: ClientID, node: Int, lifetime: Duration = .seconds(60)) async throws -> String {
        "ws://127.0.0.1:\(nodes[node].port)/ws?token=" + (try await helper.tokens.mint(for: user, lifetime: lifetime))
    }

    /// Connects `user` to node `node` and records what it gets from `ready` on.
    func connect(
        _ user: ClientID, node: Int, options: TestClient.Options = TestClient.Options()
    ) async throws -> RecordingClient {
        try await connect(user, node: node, url: try await url(for: user, node: node), options: options)
    }

    /// Connects `user` with `url` (a URL of node `node`) and records what it gets from `ready` on.
    func connect(
        _ user: ClientID, node: Int, url: String, options: TestClient.Options = TestClient.Options()
    ) async throws -> RecordingClient {
        let client = try await TestClient.connect(to: url, options: options)
        _ = try await client.awaitReady()
        let recording = RecordingClient.start(.webSocket(client), user: user, node: node)
        clients.withLock { $0.append(recording) }
        return recording
    }

    /// Connects `user` to node `node` over the event-stream transport (protocol.md §8) and
    /// records what it gets from `ready` on.
    func connectStream(_ user: ClientID, node: Int) async throws -> RecordingClient {
        let client = try await EventStreamClient.connect(to: try await url(for: user, node: node))
        _ = try await client.awaitReady()
        let recording = RecordingClient.start(.eventStream(client), user: user, node: node)
        clients.withLock { $0.append(recording) }
        return recording
    }

    // MARK: Nodes

    /// `GET /health` of node `node`: its status, 0 when it does not answer within `timeout`.
    func health(node: Int, timeout: Duration = .seconds(2)) async -> Int {
        await Self.health(port: nodes[node].port, timeout: timeout)
    }

    static func health(port: Int, timeout: Duration) async -> Int {
        guard let connection = try? await RawConnection.connect(port: port) else { return 0 }
        defer { Task { await connection.close() } }
        let request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n"
        guard (try? await connection.write(Array(request.utf8))) != nil,
            let response = try? await connection.readResponse(timeout: timeout)
        else { return 0 }
        return response.status
    }

    /// Waits until every running node's `/health` says `status`.
    func waitForHealth(_ status: Int, of indices: [Int]? = nil, timeout: Duration) async throws {
        let chosen = indices ?? Array(nodes.indices)
        try await waitUntil(timeout: timeout) {
            for node in chosen where await self.health(node: node) != status { return false }
            return true
        }
    }

    /// `GET /metrics` on node `node`'s server API ("" when it does not answer).
    func metrics(node: Int) async -> String {
        guard let url = URL(string: "http://127.0.0.1:\(apiPorts[node])/metrics") else { return "" }
        let request = URLRequest(url: url, timeoutInterval: 3)
        guard let (data, _) = try? await URLSession.shared.data(for: request) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: Presence

    /// Every online user, all pages.
    func onlineUsers() async throws -> Set<ClientID> {
        var users: Set<ClientID> = []
        var after: ClientID?
        while true {
            let page = try await helper.onlineUsers(after: after, limit: 1000)
            users.formUnion(page)
            guard page.count == 1000, let last = page.last else { return users }
            after = last
        }
    }

    /// Waits until the online users are exactly `users`.
    func waitForOnline(_ users: Set<ClientID>, timeout: Duration) async throws {
        try await waitUntil(timeout: timeout) { (try? await self.onlineUsers()) == users }
    }
}

extension Duration {
    /// The duration in seconds, with a fraction.
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
