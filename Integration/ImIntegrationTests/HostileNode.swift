import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import ImCore
import ImTesting
import Testing

/// One real `imserver` process on the memory backplane, with a known token secret, for the
/// hostile-client tests: mints tokens, sends through the server API, reads RSS and `/health`.
final class HostileNode: Sendable {
    static let secret = "hostile-secret-0123456789abcdef0123456789"

    let server: LocalServer
    let apiPort: Int
    let tokens: ConnectTokens

    var port: Int { server.port }

    private init(server: LocalServer, apiPort: Int, tokens: ConnectTokens) {
        self.server = server
        self.apiPort = apiPort
        self.tokens = tokens
    }

    /// The `imserver` binary built next to the test bundle.
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("imserver")
    }

    /// Starts a node with `environment` on top of the secret (e.g. `IM_LIMITS_CONNECTIONS_PER_NODE`).
    static func start(_ environment: [String: String] = [:]) async throws -> HostileNode {
        let port = try await freePort()
        let apiPort = try await freePort()
        let server = try await LocalServer.start(
            binary,
            arguments: [
                "--listen", "127.0.0.1:\(port)", "--api-listen", "127.0.0.1:\(apiPort)", "--threads", "2",
            ], environment: ["IM_TOKEN_SECRET": secret, "IM_LOG_LEVEL": "error"].merging(environment) { $1 }, port: port
        )
        let node = HostileNode(server: server, apiPort: apiPort, tokens: try await ConnectTokens(secret: secret))
        // Ready once /health says 200 (linked to the backplane) with nothing connected.
        try await waitUntil(timeout: .seconds(10)) { await node.openConnections() == 0 }
        return node
    }

    func stop() async {
        _ = try? await server.stop()
    }

    /// The node's resident set size in bytes; fails the test when it cannot be read.
    func rss(sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        try #require(
            server.residentBytes, "the node is not running or /proc cannot be read", sourceLocation: sourceLocation)
    }

    /// A token for `user`.
    func token(for user: String, lifetime: Duration = .seconds(30)) async throws -> String {
        try await tokens.mint(for: ClientID(rawValue: user), lifetime: lifetime)
    }

    /// The WebSocket URL with a fresh token for `user`.
    func url(for user: String) async throws -> String {
        "ws://127.0.0.1:\(port)/ws?token=" + (try await token(for: user))
    }

    /// The raw bytes of an upgrade request (`extra` replaces or adds headers; a `nil` value drops one).
    func upgradeRequest(token: String?, path: String = "/ws", headers extra: [(String, String?)] = []) -> [UInt8] {
        var headers: [(String, String?)] = [
            ("Host", "127.0.0.1:\(port)"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
        ]
        for (name, value) in extra {
            if let index = headers.firstIndex(where: { $0.0.lowercased() == name.lowercased() }) {
                headers[index].1 = value
            } else {
                headers.append((name, value))
            }
        }
        let target = path + (token.map { "?token=" + $0 } ?? "")
        var text = "GET \(target) HTTP/1.1\r\n"
        for case let (name, value?) in headers { text += "\(name): \(value)\r\n" }
        return Array((text + "\r\n").utf8)
    }

    /// A raw connection upgraded for `user`, after its `ready` frame.
    func rawClient(_ user: String, autoRead: Bool = true, receiveBufferSize: Int? = nil) async throws -> RawConnection {
        let connection = try await RawConnection.connect(port: port, receiveBufferSize: receiveBufferSize)
        try await connection.write(upgradeRequest(token: try await token(for: user)))
        let response = try await connection.readResponse()
        try #require(response.status == 101, "upgrade refused: \(response.status) \(response.body)")
        let ready = try await connection.readFrame()
        try #require(ready.opcode == 0x1 && ready.text.contains(#""type":"ready""#), "expected ready, got \(ready)")
        if !autoRead { try await connection.setReading(false) }
        return connection
    }

    /// A well-behaved client for `user`, after `ready`.
    func client(_ user: String, options: TestClient.Options = TestClient.Options()) async throws -> TestClient {
        let client = try await TestClient.connect(to: try await url(for: user), options: options)
        let ready = try await client.nextJSON(timeout: .seconds(10))
        try #require(ready["type"]?.string == "ready", "expected ready, got \(ready)")
        return client
    }

    // MARK: HTTP

    /// `POST /v1/messages`; returns the message id.
    @discardableResult
    func send(_ text: String, from sender: String = "sender", to receivers: [String], receipt: Bool = false)
        async throws -> String
    {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(apiPort)/v1/messages")!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let body: [String: Any] = ["from": sender, "to": receivers, "data": text, "receipt": receipt]
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        try #require(status == 200, "POST /v1/messages answered \(status): \(String(decoding: data, as: UTF8.self))")
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        return try #require(object?["id"] as? String)
    }

    /// The node's open connections, from `GET /health`; -1 when it does not answer 200.
    func openConnections() async -> Int {
        guard let url = URL(string: "http://127.0.0.1:\(port)/health"),
            let (data, response) = try? await URLSession.shared.data(from: url),
            (response as? HTTPURLResponse)?.statusCode == 200,
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let count = object["connections"] as? Int
        else { return -1 }
        return count
    }

    /// Fails the test unless a fresh client can connect, receives a message sent through the
    /// server API, and answers a `ping` with a `pong`.
    func expectStillServing(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(server.isRunning, "the node is still running", sourceLocation: sourceLocation)
        let user = "probe-\(Int.random(in: 0..<1_000_000_000))"
        let probe = try await client(user)
        let id = try await send("still serving", to: [user])
        let message = try await probe.next(type: "message", timeout: .seconds(10))
        #expect(message["id"]?.string == id, sourceLocation: sourceLocation)
        try await probe.send(text: #"{"type":"ping"}"#)
        let pong = try await probe.next(type: "pong", timeout: .seconds(10))
        #expect(pong["type"]?.string == "pong", sourceLocation: sourceLocation)
        await probe.close()
    }
}

/// Runs `body` for `duration` of wall time, counting how many times it ran; `body` returns
/// `false` to stop early.
func repeatFor(_ duration: Duration, _ body: () async throws -> Bool) async rethrows -> Int {
    let end = ContinuousClock.now + duration
    var rounds = 0
    while ContinuousClock.now < end {
        rounds += 1
        guard try await body() else { break }
    }
    return rounds
}

/// A mebibyte count for messages.
func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
