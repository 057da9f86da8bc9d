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
    /// A node on `cluster`'s backplane serving the demo, its port, and a runner to stop it.
    private func startDemo(on cluster: TestCluster, loopbackOnly: Bool = true) async throws
        -> (ImNode, ServiceRunner, Int)
    {
        var routes = PublicRoutes()
        routes.addDemo(helper: cluster.helper, loopbackOnly: loopbackOnly)
        let node = ImNode(
            configuration: NodeConfiguration(nodeID: "demo-node", port: 0), backplane: cluster.backplane,
            tokens: cluster.helper.tokens, routes: routes, logger: Logger(label: "demo-test"))
        let runner = ServiceRunner(service: node, logger: Logger(label: "demo-test"))
        let port = try #require(await node.transport.waitUntilBound())
        return (node, runner, port)
    }

    @Test("a demo request with a Host that is not loopback, or a foreign Origin, is refused with 403")
    func loopbackHostAndOrigin() async throws {
        try await TestCluster.with { cluster in
            let (_, runner, port) = try await startDemo(on: cluster)
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
            try await runner.stop()
        }
    }

    @Test("a demo POST that is not application/json is refused with 415")
    func jsonOnly() async throws {
        try await TestCluster.with { cluster in
            let (_, runner, port) = try await startDemo(on: cluster)
            let body = #"{"from":"alice","text":"hi"}"#
            for type in ["text/plain", "application/x-www-form-urlencoded", nil] {
                let typeLine = type.map { "Content-Type: \($0)\r\n" } ?? ""
                let (status, text) = try await StreamingHTTP.exchange(
                    port: port, "POST /demo/room HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\(typeLine)", body: body)
                #expect(status == 415, "\(type ?? "no type"): \(text)")
            }
            let (status, text) = try await StreamingHTTP.exchange(
                port: port, "POST /demo/room HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/json\r\n",
                body: body)
            #expect(status == 200, "\(text)")
            try await runner.stop()
        }
    }

    @Test("a public demo (demo.allowPublic) answers any Host but still wants JSON")
    func publicDemo() async throws {
        try await TestCluster.with { cluster in
            let (_, runner, port) = try await startDemo(on: cluster, loopbackOnly: false)
            let (status, _) = try await StreamingHTTP.exchange(
                port: port, "GET /demo/login?user=alice HTTP/1.1\r\nHost: chat.example.com\r\n")
            #expect(status == 200)
            let (plain, _) = try await StreamingHTTP.exchange(
                port: port, "POST /demo/room HTTP/1.1\r\nHost: chat.example.com\r\nContent-Type: text/plain\r\n",
                body: #"{"from":"alice","text":"hi"}"#)
            #expect(plain == 415)
            try await runner.stop()
        }
    }
}
