import Foundation
import NIOCore
import NIOPosix

/// `imserver` processes started for a cluster run, and stopped with SIGTERM after it.
final class NodeCluster: @unchecked Sendable {
    /// One node: its process, public WebSocket endpoint and API.
    struct Node {
        var process: Process
        var publicEndpoint: Endpoint
        var api: Endpoint
    }

    private(set) var nodes: [Node] = []
    /// The token secret every node shares.
    let tokenSecret = randomTokenSecret()

    /// Starts `count` nodes of `executable`: node `i` (from 1) is `bench-i`, listens on
    /// `basePort + i - 1` and serves its API on `baseAPIPort + i - 1`, with generous limits.
    /// Their output goes to `node-i.log` in `logDirectory`.
    func start(
        count: Int, executable: String, backplane: String, basePort: Int, baseAPIPort: Int, apiKey: String?,
        extraEnvironment: [String: String], logDirectory: String
    ) throws {
        try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        for number in 1...count {
            let port = basePort + number - 1
            let apiPort = baseAPIPort + number - 1
            var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("IM_") }
            environment["IM_NODE_ID"] = "bench-\(number)"
            environment["IM_PUBLIC_LISTEN"] = "127.0.0.1:\(port)"
            environment["IM_API_LISTEN"] = "127.0.0.1:\(apiPort)"
            environment["IM_BACKPLANE_URL"] = backplane
            environment["IM_TOKEN_SECRET"] = tokenSecret
            environment["IM_TOKEN_LIFETIME"] = "600"
            environment["IM_LOG_LEVEL"] = "warning"
            environment["IM_LIMITS_CONNECTIONS_PER_NODE"] = "1000000"
            environment["IM_LIMITS_HANDSHAKES_PER_SECOND"] = "1000000"
            if let apiKey { environment["IM_API_KEY"] = apiKey }
            environment.merge(extraEnvironment) { _, extra in extra }
            let log = "\(logDirectory)/node-\(number).log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.environment = environment
            process.standardOutput = output
            process.standardError = output
            process.standardInput = FileHandle.nullDevice
            try process.run()
            nodes.append(
                Node(
                    process: process,
                    publicEndpoint: try Endpoint(parsing: "http://127.0.0.1:\(port)/ws"),
                    api: try Endpoint(parsing: "http://127.0.0.1:\(apiPort)")))
            Console.log(
                "started node bench-\(number) (pid \(process.processIdentifier)) on :\(port), API :\(apiPort), log \(log)"
            )
        }
    }

    /// The nodes' process ids.
    var pids: [Int32] { nodes.map(\.process.processIdentifier) }

    /// Waits until every node answers `GET /health` and `GET /v1/health` with 200.
    func waitUntilHealthy(timeout: Double, group: any EventLoopGroup) async throws {
        let deadline = MonotonicClock.now() + UInt64(timeout * 1e9)
        for node in nodes {
            for (endpoint, path) in [(node.publicEndpoint, "/health"), (node.api, "/v1/health")] {
                while true {
                    guard node.process.isRunning else {
                        throw BenchError.server("node on \(endpoint.hostHeader) exited (see its log)")
                    }
                    if await Self.isHealthy(endpoint, path: path, group: group) { break }
                    guard MonotonicClock.now() < deadline else {
                        throw BenchError.server("node on \(endpoint.hostHeader) not healthy within \(timeout) s")
                    }
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
        }
    }

    private static func isHealthy(_ endpoint: Endpoint, path: String, group: any EventLoopGroup) async -> Bool {
        guard let connection = try? await HTTPConnection.connect(to: endpoint, apiKey: nil, on: group.next()) else {
            return false
        }
        defer { connection.close() }
        return (try? await connection.request(.GET, path))?.status == 200
    }

    /// Sends SIGTERM to every node and waits up to `timeout` seconds each, then SIGKILL.
    func stop(timeout: Double = 15) async {
        for node in nodes where node.process.isRunning { node.process.terminate() }
        for node in nodes {
            let deadline = MonotonicClock.now() + UInt64(timeout * 1e9)
            while node.process.isRunning && MonotonicClock.now() < deadline {
                try? await Task.sleep(for: .milliseconds(50))
            }
            if node.process.isRunning {
                Console.log("node pid \(node.process.processIdentifier) ignored SIGTERM; killing it")
                kill(node.process.processIdentifier, SIGKILL)
            }
        }
    }
}

/// A fresh HS256 token secret: 32 random bytes (system generator) as 64 hex digits.
func randomTokenSecret() -> String {
    (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
}
