import Foundation
import Hummingbird
import ImCore
import ImHelper
import ImServer
import ImTesting
import Logging
import Testing

@testable import ImServerAPI

/// `GET /admin` and `GET /v1/node/stats` on the server API.
@Suite("Admin page and node stats")
struct AdminPageTests {
    static let key = "admin-api-key-0123456789"

    /// Runs `body` with the API of a one-node `cluster`'s helper on a free port, serving node 0's
    /// figures.
    private func withAPI(
        on cluster: TestCluster, key: String? = Self.key, _ body: (_ port: Int) async throws -> Void
    ) async throws {
        let node = cluster.nodes[0].node
        try await cluster.withServerAPI(
            configuration: ServerAPIConfiguration(port: 0, apiKey: key), nodeStats: { await node.core.snapshot() },
            body)
    }

    private func stats(_ port: Int) async throws -> JSONValue {
        let result = try await httpRequest(
            "GET", "http://127.0.0.1:\(port)/v1/node/stats", headers: ["Authorization": "Bearer \(Self.key)"])
        try #require(result.status == 200, "\(result.status): \(result.text)")
        return try #require(result.json)
    }

    @Test("the node's figures move as a client connects, receives, pings and is closed")
    func statsMove() async throws {
        try await TestCluster.with { cluster in
            try await withAPI(on: cluster) { port in
                let before = try await stats(port)
                #expect(before["node"]?.string == "test-node-0")
                #expect(before["backplane"]?["status"]?.string == "up")
                #expect(before["backplane"]?["linked"] == .bool(true))
                #expect(before["connections"]?["open"] == .number(0))
                #expect(before["connections"]?["accepted"] == .number(0))
                #expect(before["traffic"]?["deliveries"] == .number(0))
                #expect(before["latency"]?["p99Seconds"] == .null, "no samples yet: \(before)")
                #expect((before["uptimeSeconds"]?.double ?? -1) >= 0)

                let alice = try await cluster.connect("alice")
                let sent = try await cluster.helper.send(
                    try JSONPayload(encoding: ["text": "hi"]), from: "bob", to: ["alice"])
                #expect(try await alice.next(type: "message")["id"]?.string == sent.id)
                try await alice.send(text: #"{"type":"ping"}"#)
                _ = try await alice.next(type: "pong")
                // The refused handshake: a token that does not verify.
                await #expect(throws: (any Error).self) {
                    try await TestClient.connect(to: cluster.nodes[0].url + "?token=not-a-token")
                }

                let after = try await stats(port)
                #expect(after["connections"]?["open"] == .number(1))
                #expect(after["connections"]?["accepted"] == .number(1))
                #expect(after["connections"]?["refused"]?["401"] == .number(1), "\(after)")
                #expect(after["traffic"]?["deliveries"] == .number(1))
                #expect((after["traffic"]?["framesIn"]?.double ?? 0) >= 1, "the ping")
                #expect((after["traffic"]?["framesOut"]?.double ?? 0) >= 3, "ready, message, pong")
                #expect((after["traffic"]?["bytesOut"]?.double ?? 0) > 0)
                #expect((after["traffic"]?["flushes"]?.double ?? 0) >= 1)
                #expect((after["latency"]?["samples"]?.double ?? 0) >= 1, "\(after)")
                let p50 = try #require(after["latency"]?["p50Seconds"]?.double, "\(after)")
                let p99 = try #require(after["latency"]?["p99Seconds"]?.double, "\(after)")
                #expect(p50 > 0 && p50 <= p99 && p99 <= 5)
                #expect((after["uptimeSeconds"]?.double ?? 0) >= (before["uptimeSeconds"]?.double ?? 0))

                try await cluster.helper.forceOffline("alice")
                #expect(try await alice.closeCode() == 4003)
                try await waitUntil {
                    let closed = try await stats(port)
                    return closed["connections"]?["open"] == .number(0)
                        && closed["connections"]?["closes"]?["4003"] == .number(1)
                }
            }
        }
    }

    @Test("node stats need the API key when one is configured; the page is served without it")
    func keyRequired() async throws {
        try await TestCluster.with { cluster in
            try await withAPI(on: cluster) { port in
                let base = "http://127.0.0.1:\(port)"
                #expect(try await httpRequest("GET", base + "/v1/node/stats").status == 401)
                let wrong = try await httpRequest(
                    "GET", base + "/v1/node/stats", headers: ["Authorization": "Bearer wrong"])
                #expect(wrong.status == 401)
                #expect(wrong.json?["error"]?["code"]?.string == "unauthorized")
                let page = try await httpRequest("GET", base + "/admin")
                #expect(page.status == 200)
                #expect(page.text.contains("<title>ImServer admin</title>"))
                #expect(!page.text.contains(Self.key))
            }
        }
    }

    @Test("the page has a strict Content-Security-Policy naming its inline script and style by hash")
    func securityHeaders() async throws {
        try await TestCluster.with { cluster in
            try await withAPI(on: cluster) { port in
                let (status, text) = try await StreamingHTTP.exchange(
                    port: port, "GET /admin HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                #expect(status == 200)
                let head = String(text.prefix { $0 != "<" }).lowercased()
                let policy = try #require(
                    head.split(separator: "\r\n").first { $0.hasPrefix("content-security-policy:") }, "\(head)")
                for directive in [
                    "default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'",
                    "form-action 'none'",
                ] {
                    #expect(policy.contains(directive), "\(directive) in \(policy)")
                }
                #expect(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"))
                #expect(head.contains("x-content-type-options: nosniff"))
                #expect(head.contains("content-type: text/html; charset=utf-8"))

                // The inline script and style served are those the policy allows (hashes are
                // case-sensitive: compare with the header as sent).
                let raw = try #require(
                    text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-security-policy:") })
                for (open, close) in [("<script>", "</script>"), ("<style>", "</style>")] {
                    let start = try #require(text.range(of: open))
                    let end = try #require(text.range(of: close, range: start.upperBound..<text.endIndex))
                    let inline = String(text[start.upperBound..<end.lowerBound])
                    #expect(raw.contains(AdminPage.hash(inline)), "\(open) hash in the policy")
                }
                // Self-contained: nothing loaded from elsewhere.
                #expect(!text.contains("src=\""), "no external script or image")
                #expect(!text.contains("http://") && !text.contains("https://"))
            }
        }
    }

    @Test("without a key, the page and its calls work from a loopback page only")
    func loopbackWithoutKey() async throws {
        try await TestCluster.with { cluster in
            try await withAPI(on: cluster, key: nil) { port in
                let origin = "Origin: http://127.0.0.1:\(port)\r\n"
                let page = try await StreamingHTTP.exchange(
                    port: port, "GET /admin HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n")
                #expect(page.status == 200)
                let stats = try await StreamingHTTP.exchange(
                    port: port, "GET /v1/node/stats HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\(origin)")
                #expect(stats.status == 200, "\(stats.text)")
                #expect(stats.text.contains(#""node":"test-node-0""#))
                let send = try await StreamingHTTP.exchange(
                    port: port,
                    "POST /v1/broadcasts HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\(origin)Content-Type: application/json\r\n",
                    body: #"{"data":{"text":"from the admin page"}}"#)
                #expect(send.status == 200, "\(send.text)")
                for request in [
                    "GET /admin HTTP/1.1\r\nHost: admin.example.com:\(port)\r\n",
                    "GET /v1/node/stats HTTP/1.1\r\nHost: admin.example.com\r\n",
                    "GET /v1/node/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://evil.example\r\n",
                ] {
                    let refused = try await StreamingHTTP.exchange(port: port, request)
                    #expect(refused.status == 403, "\(request)")
                }
            }
        }
    }
}

extension JSONValue {
    /// The value if it is a number, as a `Double`.
    fileprivate var double: Double? {
        if case .number(let value) = self { return NSDecimalNumber(decimal: value).doubleValue }
        return nil
    }
}
