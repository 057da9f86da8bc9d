import Foundation
import ImCore
import ImTesting
import Testing

@Suite("The WebSocket upgrade on the public port")
struct UpgradeTests {
    /// RFC 6455's sample key and the accept value it must produce (§1.3).
    private static let key = "dGhlIHNhbXBsZSBub25jZQ=="
    private static let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    private static func target(of url: String) throws -> String {
        let components = try #require(URLComponents(string: url))
        return components.path + "?" + (components.percentEncodedQuery ?? "")
    }

    private static func request(
        _ target: String, method: String = "GET", version: String = "HTTP/1.1",
        connection: String? = "Upgrade", key: String? = UpgradeTests.key,
        webSocketVersion: String? = "13", host: String? = "127.0.0.1"
    ) -> String {
        var lines = ["\(method) \(target) \(version)", "Upgrade: websocket"]
        if let host { lines.append("Host: \(host)") }
        if let connection { lines.append("Connection: \(connection)") }
        if let key { lines.append("Sec-WebSocket-Key: \(key)") }
        if let webSocketVersion { lines.append("Sec-WebSocket-Version: \(webSocketVersion)") }
        return lines.joined(separator: "\r\n") + "\r\n\r\n"
    }

    /// A masked client text frame (RFC 6455 §5.3: clients mask every frame).
    private static func maskedText(_ text: String) -> [UInt8] {
        let payload = Array(text.utf8)
        let mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
        return [0x81, 0x80 | UInt8(payload.count)] + mask + payload.enumerated().map { $1 ^ mask[$0 % 4] }
    }

    @Test(
        "a malformed WebSocket request is refused with its status and reason, and its token stays usable",
        arguments: [
            ("POST", "HTTP/1.1", "Upgrade", key, "13", 405, "a WebSocket upgrade must be a GET request"),
            ("GET", "HTTP/1.0", "Upgrade", key, "13", 400, "a WebSocket upgrade needs HTTP/1.1"),
            ("GET", "HTTP/1.1", "keep-alive", key, "13", 400, "a WebSocket upgrade needs Connection: Upgrade"),
            ("GET", "HTTP/1.1", "Upgrade", nil, "13", 400, "a WebSocket upgrade needs one Sec-WebSocket-Key"),
            // RFC 6455 §4.1: the key is 16 random bytes in base64.
            ("GET", "HTTP/1.1", "Upgrade", "abc", "13", 400, "Sec-WebSocket-Key: 16 bytes in base64"),
            (
                "GET", "HTTP/1.1", "Upgrade", "dGhlIHNhbXBsZSBub25jZQ", "13", 400,
                "Sec-WebSocket-Key: 16 bytes in base64"
            ),
            (
                "GET", "HTTP/1.1", "Upgrade", "dGhlIHNhbXBsZSBub25jZ*==", "13", 400,
                "Sec-WebSocket-Key: 16 bytes in base64"
            ),
            (
                "GET", "HTTP/1.1", "Upgrade", "dGhlIHNhbXBsZSBub25jZQdGhl", "13", 400,
                "Sec-WebSocket-Key: 16 bytes in base64"
            ),
            ("GET", "HTTP/1.1", "Upgrade", key, "8", 426, "Sec-WebSocket-Version must be 13"),
            ("GET", "HTTP/1.1", "Upgrade", key, "13", 400, "a WebSocket upgrade needs one Host header"),
        ] as [(String, String, String, String?, String, Int, String)])
    func malformedRequests(
        _ method: String, _ version: String, _ connection: String, _ key: String?,
        _ webSocketVersion: String, _ status: Int, _ reason: String
    ) async throws {
        try await TestCluster.with { cluster in
            let url = try await cluster.url(for: "alice")
            let noHost = reason.contains("Host")
            let request = Self.request(
                try Self.target(of: url), method: method, version: version,
                connection: connection, key: key, webSocketVersion: webSocketVersion,
                host: noHost ? nil : "127.0.0.1")
            let exchange = try await StreamingHTTP.open(port: cluster.nodes[0].port, request: request)
            let response = try await exchange.read(until: reason)
            #expect(response.hasPrefix("HTTP/1.1 \(status) "), "\(response)")
            #expect(response.contains(reason))
            if status == 426 {
                // RFC 6455 §4.4: a 426 names the versions the server speaks.
                #expect(response.lowercased().contains("sec-websocket-version: 13\r\n"), "\(response)")
            }
            #expect(cluster.nodes[0].node.core.stats.refusals(status: UInt(status)) == 1)
            await exchange.close()
            // Refused before the token was looked at: it still connects.
            let client = try await TestClient.connect(to: url)
            #expect(try await client.next(type: "ready")["client"] == .string("alice"))
            await client.close()
        }
    }

    @Test("the 101 carries the RFC 6455 accept value, and a frame sent with the request is not lost")
    func frameWithTheRequest() async throws {
        try await TestCluster.with { cluster in
            let url = try await cluster.url(for: "eager")
            // The request and a ping frame leave in one write, so they arrive in one read: the ping
            // waits in the HTTP parser while the token is checked and must reach the connection.
            let bytes = Array(Self.request(try Self.target(of: url)).utf8) + Self.maskedText(#"{"type":"ping"}"#)
            let exchange = try await StreamingHTTP.open(port: cluster.nodes[0].port, bytes: bytes)
            let stream = try await exchange.read(until: #""type":"pong""#)
            #expect(stream.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"), "\(stream)")
            #expect(stream.lowercased().contains("sec-websocket-accept: \(Self.accept.lowercased())\r\n"))
            let ready = try #require(stream.range(of: #""type":"ready""#))
            let pong = try #require(stream.range(of: #""type":"pong""#))
            #expect(ready.lowerBound < pong.lowerBound, "ready is the first frame")
            await exchange.close()
        }
    }

    @Test("a plain GET on the WebSocket path is plain HTTP, answered by the public routes")
    func plainRequestOnThePath() async throws {
        try await TestCluster.with { cluster in
            let exchange = try await StreamingHTTP.open(
                port: cluster.nodes[0].port,
                request: "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let response = try await exchange.read(until: "not found")
            #expect(response.hasPrefix("HTTP/1.1 404 "), "\(response)")
            await exchange.close()
        }
    }
}
