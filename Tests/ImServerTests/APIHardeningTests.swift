import Foundation
import Hummingbird
import ImCore
import ImHelper
@testable import ImServer
@testable import ImServerAPI
import ImTesting
import Logging
import Testing

/// The server API's keys, request guards and metrics.
@Suite("Server API hardening")
struct APIHardeningTests {
    static let key = "hardening-api-key-0123456789"

    /// Runs `body` with the API (and `/metrics`) of `cluster`'s helper on a free port.
    private func withAPI(
        on cluster: TestCluster, key: String? = Self.key, _ body: (_ port: Int) async throws -> Void
    ) async throws {
        try await cluster.withServerAPI(
            configuration: ServerAPIConfiguration(port: 0, apiKey: key), metrics: { "imserver_test_metric 1.0\n" },
            body)
    }

    @Test("an empty or short API key stops the API from starting; 16 bytes start")
    func emptyAndShortKeys() async throws {
        try await TestCluster.with { cluster in
            func make(_ configuration: ServerAPIConfiguration) throws(ServerAPIError) {
                _ = try ServerAPI.makeApplication(
                    helper: cluster.helper, configuration: configuration, health: { .up },
                    logger: Logger(label: "t"))
            }
            #expect(throws: ServerAPIError.emptyKey) { try make(ServerAPIConfiguration(apiKey: "")) }
            #expect(throws: ServerAPIError.emptyKey) { try make(ServerAPIConfiguration(host: "0.0.0.0", apiKey: "")) }
            #expect(throws: ServerAPIError.shortKey(length: 15)) {
                try make(ServerAPIConfiguration(host: "0.0.0.0", apiKey: String(repeating: "k", count: 15)))
            }
            #expect(throws: ServerAPIError.missingKey(host: "0.0.0.0")) {
                try make(ServerAPIConfiguration(host: "0.0.0.0"))
            }
            try make(ServerAPIConfiguration(host: "0.0.0.0", apiKey: String(repeating: "k", count: 16)))
            try make(ServerAPIConfiguration())
            #expect(ServerAPIError.emptyKey.description.contains("empty"))
            #expect(ServerAPIError.shortKey(length: 3).description.contains("at least 16"))
        }
    }

    @Test("an empty presented key is refused, even by a middleware holding an empty key")
    func emptyPresentedKey() async throws {
        try await TestCluster.with { cluster in
            // `throws` spelled out: the closure's only `try`s are inside #expect, which hides them.
            try await withAPI(on: cluster) { port async throws in
                let base = "http://127.0.0.1:\(port)/v1/online"
                #expect(try await httpRequest("GET", base, headers: ["X-Api-Key": ""]).status == 401)
                #expect(try await httpRequest("GET", base, headers: ["Authorization": "Bearer "]).status == 401)
                #expect(try await httpRequest("GET", base, headers: ["X-Api-Key": Self.key]).status == 200)
            }

            // The middleware itself, with an empty key (makeApplication refuses to build that).
            let router = Router(context: BasicRequestContext.self)
            router.add(middleware: APIErrorMiddleware())
            router.add(middleware: APIKeyMiddleware(key: []))
            router.get("/x") { _, _ in "ok" }
            let ports = AsyncQueue<Int>()
            let app = Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { ports.push($0.localAddress?.port ?? 0) })
            try await ServiceRunner.with(app, logger: Logger(label: "t")) {
                let bare = try #require(try await ports.next(timeout: .seconds(10)), "the API never reported its port")
                for headers in [["X-Api-Key": ""], ["Authorization": "Bearer "], [:]] {
                    #expect(try await httpRequest("GET", "http://127.0.0.1:\(bare)/x", headers: headers).status == 401)
                }
            }
        }
    }

    @Test("/metrics needs the API key when one is configured; /v1/health never does")
    func metricsBehindKey() async throws {
        try await TestCluster.with { cluster in
            try await withAPI(on: cluster) { port in
                let base = "http://127.0.0.1:\(port)"
                #expect(try await httpRequest("GET", base + "/metrics").status == 401)
                #expect(try await httpRequest("GET", base + "/metrics", headers: ["X-Api-Key": "wrong"]).status == 401)
                let metrics = try await httpRequest(
                    "GET", base + "/metrics", headers: ["Authorization": "Bearer \(Self.key)"])
                #expect(metrics.status == 200)
                #expect(metrics.text.contains("imserver_test_metric"))
                #expect(try await httpRequest("GET", base + "/v1/health").status == 200)
            }

            try await TestCluster.with { other in
                try await withAPI(on: other, key: nil) { openPort async throws in
                    #expect(try await httpRequest("GET", "http://127.0.0.1:\(openPort)/metrics").status == 200)
                }
            }
        }
    }

    @Test("a request body that is not application/json is refused with 415", arguments: [nil, Self.key])
    func jsonBodiesOnly(key: String?) async throws {
        try await TestCluster.with { cluster in
            try await withAPI(on: cluster, key: key) { port in
                let auth = key.map { "Authorization: Bearer \($0)\r\n" } ?? ""
                let body = #"{"client":"alice"}"#
                for type in [
                    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", nil,
                ] {
                    let typeLine = type.map { "Content-Type: \($0)\r\n" } ?? ""
                    let (status, text) = try await StreamingHTTP.exchange(
                        port: port, "POST /v1/connect-url HTTP/1.1\r\nHost: 127.0.0.1\r\n\(auth)\(typeLine)",
                        body: body)
                    #expect(status == 415, "\(type ?? "no type"): \(text)")
                    #expect(text.contains("unsupported_media_type"))
                }
                for type in ["application/json", "application/json; charset=utf-8", "Application/JSON"] {
                    let (status, text) = try await StreamingHTTP.exchange(
                        port: port,
                        "POST /v1/connect-url HTTP/1.1\r\nHost: 127.0.0.1\r\n\(auth)Content-Type: \(type)\r\n",
                        body: body)
                    #expect(status == 200, "\(type): \(text)")
                }
                let (offline, _) = try await StreamingHTTP.exchange(
                    port: port, "POST /v1/clients/nobody/offline HTTP/1.1\r\nHost: 127.0.0.1\r\n\(auth)")
                #expect(offline == 200, "a POST without a body needs no type")
            }
        }
    }

    @Test("without a key, a Host that is not loopback (DNS rebinding) or a foreign Origin is refused with 403")
    func loopbackOnlyWithoutKey() async throws {
        try await TestCluster.with { cluster in
            try await withAPI(on: cluster, key: nil) { port in
                for host in [
                    "evil.example", "evil.example:\(port)", "127.0.0.1.evil.example", "10.0.0.1:\(port)",
                    "[::2]:\(port)",
                ] {
                    let (status, text) = try await StreamingHTTP.exchange(
                        port: port, "GET /v1/online HTTP/1.1\r\nHost: \(host)\r\n")
                    #expect(status == 403, "\(host): \(text)")
                }
                for host in [
                    "127.0.0.1", "127.0.0.1:\(port)", "localhost:\(port)", "LOCALHOST", "[::1]:\(port)", "127.1.2.3",
                ] {
                    let (status, text) = try await StreamingHTTP.exchange(
                        port: port, "GET /v1/online HTTP/1.1\r\nHost: \(host)\r\n")
                    #expect(status == 200, "\(host): \(text)")
                }
                for origin in ["http://evil.example", "null", "https://127.0.0.1.evil.example"] {
                    let (status, _) = try await StreamingHTTP.exchange(
                        port: port, "GET /v1/online HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nOrigin: \(origin)\r\n")
                    #expect(status == 403, "\(origin)")
                }
                let (local, _) = try await StreamingHTTP.exchange(
                    port: port,
                    "GET /v1/online HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nOrigin: http://localhost:3000\r\n")
                #expect(local == 200)
            }

            // With a key, the key is what protects the API: any Host is served.
            try await TestCluster.with { other in
                try await withAPI(on: other) { keyedPort in
                    let (status, _) = try await StreamingHTTP.exchange(
                        port: keyedPort,
                        "GET /v1/online HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer \(Self.key)\r\n"
                    )
                    #expect(status == 200)
                }
            }
        }
    }

    @Test("the loopback name checks")
    func loopbackNames() {
        #expect(LoopbackNames.isLoopback(authority: "localhost"))
        #expect(LoopbackNames.isLoopback(authority: "app.localhost:80"))
        #expect(LoopbackNames.isLoopback(authority: "[::1]"))
        #expect(!LoopbackNames.isLoopback(authority: "[::1]x"))
        #expect(!LoopbackNames.isLoopback(authority: "127.0.0.1:99999"))
        #expect(!LoopbackNames.isLoopback(authority: "127.0.0.256"))
        #expect(!LoopbackNames.isLoopback(authority: ""))
        #expect(LoopbackNames.isLoopback(authority: "127.0.0.1:6002"))
        #expect(LoopbackNames.isLoopback(authority: "LocalHost"))
        #expect(!LoopbackNames.isLoopback(authority: "127.0.0.1.example.com"))
        #expect(!LoopbackNames.isLoopback(authority: "localhost.example.com:80"))
        #expect(LoopbackNames.isLoopback(origin: "http://127.0.0.1:6001"))
        #expect(!LoopbackNames.isLoopback(origin: "http://127.0.0.1:6001/path"))
        #expect(!LoopbackNames.isLoopback(origin: "file://"))
        #expect(LoopbackNames.isJSON(contentType: "application/json ; charset=utf-8"))
        #expect(!LoopbackNames.isJSON(contentType: "application/jsonp"))
        #expect(LoopbackNames.isJSON(contentType: "application/json"))
        #expect(LoopbackNames.isJSON(contentType: "Application/JSON"))
        #expect(!LoopbackNames.isJSON(contentType: "text/plain"))
    }

    @Test("a meta too long for a connect URL is refused with 400 and the reason")
    func metaTooLong() async throws {
        try await TestCluster.with { cluster in
            try await withAPI(on: cluster) { port in
                let meta = String(repeating: "m", count: ImHelper.maximumMetaLength + 1)
                let response = try await httpRequest(
                    "POST", "http://127.0.0.1:\(port)/v1/connect-url",
                    body: #"{"client":"alice","meta":"\#(meta)"}"#,
                    headers: ["X-Api-Key": Self.key])
                #expect(response.status == 400)
                #expect(response.json?["error"]?["message"]?.string?.contains("meta has 2049 bytes") == true)
            }
        }
    }
}
