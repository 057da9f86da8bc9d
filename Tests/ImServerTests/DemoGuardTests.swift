import Foundation
import ImCore
import ImHelper
import ImServer
import ImTesting
import Logging
import Testing

@testable import ImServerAPI

/// The demo's endpoints refuse cross-site and rebound requests.
@Suite("Demo endpoints hardening")
struct DemoGuardTests {
    /// Runs `body` with a node on `cluster`'s backplane serving the demo, given its port, and
    /// stops the node afterwards, also when `body` throws.
    private func withDemo(
        on cluster: TestCluster, loopbackOnly: Bool = true, _ body: (_ port: Int) async throws -> Void
    ) async throws {
        var routes = PublicRoutes()
        routes.addDemo(helper: cluster.helper, loopbackOnly: loopbackOnly)
        let node = ImNode(
            configuration: NodeConfiguration(nodeID: "demo-node", port: 0), backplane: cluster.backplane,
            tokens: cluster.helper.tokens, routes: routes, logger: Logger(label: "demo-test"))
        try await ServiceRunner.with(node, logger: Logger(label: "demo-test")) {
            try await body(try #require(await node.transport.waitUntilBound()))
        }
    }

    @Test("a demo request with a Host that is not loopback, or a foreign Origin, is refused with 403")
    func loopbackHostAndOrigin() async throws {
        try await TestCluster.with { cluster in
            try await withDemo(on: cluster) { port in
                let login = "GET /demo/login?user=alice HTTP/1.1\r\n"
                for host in ["evil.example", "evil.example:\(port)", "192.168.1.5:\(port)"] {
                    let (status, text) = try await StreamingHTTP.exchange(port: port, login + "Host: \(host)\r\n")
                    #expect(status == 403, "\(host): \(text)")
                    #expect(!text.contains("token="))
                }
                let (foreign, _) = try await StreamingHTTP.exchange(
                    port: port, login + "Host: 127.0.0.1:\(port)\r\nOrigin: http://evil.example\r\n")
                #expect(foreign == 403)
                let (page, _) = try await StreamingHTTP.exchange(port: port, "GET / HTTP/1.1\r\nHost: evil.example\r\n")
                #expect(page == 403)
                let (ok, text) = try await StreamingHTTP.exchange(
                    port: port, login + "Host: localhost:\(port)\r\nOrigin: http://localhost:\(port)\r\n")
                #expect(ok == 200, "\(text)")
                #expect(text.contains("token="))
            }
        }
    }

    @Test("a demo POST that is not application/json is refused with 415")
    func jsonOnly() async throws {
        try await TestCluster.with { cluster in
            try await withDemo(on: cluster) { port in
                let body = #"{"from":"alice","text":"hi"}"#
                for type in ["text/plain", "application/x-www-form-urlencoded", nil] {
                    let typeLine = type.map { "Content-Type: \($0)\r\n" } ?? ""
                    let (status, text) = try await StreamingHTTP.exchange(
                        port: port, "POST /demo/room HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\(typeLine)", body: body)
                    #expect(status == 415, "\(type ?? "no type"): \(text)")
                }
                let (status, text) = try await StreamingHTTP.exchange(
                    port: port,
                    "POST /demo/room HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/json\r\n",
                    body: body)
                #expect(status == 200, "\(text)")
            }
        }
    }

    @Test("a public demo (demo.allowPublic) answers any Host but still wants JSON")
    func publicDemo() async throws {
        try await TestCluster.with { cluster in
            try await withDemo(on: cluster, loopbackOnly: false) { port in
                let (status, _) = try await StreamingHTTP.exchange(
                    port: port, "GET /demo/login?user=alice HTTP/1.1\r\nHost: chat.example.com\r\n")
                #expect(status == 200)
                let (plain, _) = try await StreamingHTTP.exchange(
                    port: port, "POST /demo/room HTTP/1.1\r\nHost: chat.example.com\r\nContent-Type: text/plain\r\n",
                    body: #"{"from":"alice","text":"hi"}"#)
                #expect(plain == 415)
            }
        }
    }
}
