import Foundation
import Hummingbird
import ImCore
import ImHelper
import ImServer
import ImTesting
import Logging
import Testing

@testable import ImServerAPI

@Suite("Server API over HTTP")
struct ServerAPITests {
    static let key = "test-api-key-0123456789"

    /// Runs `body` with the API of `cluster`'s helper on a free port, given its base URL.
    private func withAPI(on cluster: TestCluster, _ body: (_ base: String) async throws -> Void) async throws {
        try await cluster.withServerAPI(configuration: ServerAPIConfiguration(port: 0, apiKey: Self.key)) { port in
            try await body("http://127.0.0.1:\(port)")
        }
    }

    private func call(_ method: String, _ base: String, _ path: String, _ body: String? = nil) async throws
        -> HTTPResult
    {
        try await httpRequest(method, base + path, body: body, headers: ["Authorization": "Bearer \(Self.key)"])
    }

    @Test("every request needs the API key; errors are JSON with a code and message")
    func authenticationAndErrors() async throws {
        try await TestCluster.with { cluster in
            try await withAPI(on: cluster) { base in
                let missing = try await httpRequest("GET", base + "/v1/online")
                #expect(missing.status == 401)
                #expect(missing.json?["error"]?["code"]?.string == "unauthorized")
                let wrong = try await httpRequest("GET", base + "/v1/online", headers: ["Authorization": "Bearer nope"])
                #expect(wrong.status == 401)
                let header = try await httpRequest("GET", base + "/v1/online", headers: ["X-Api-Key": Self.key])
                #expect(header.status == 200)
                let health = try await httpRequest("GET", base + "/v1/health")
                #expect(health.status == 200, "health needs no key")

                let badBody = try await call("POST", base, "/v1/messages", #"{"from":"a"}"#)
                #expect(badBody.status == 400)
                #expect(badBody.json?["error"]?["code"]?.string == "invalid_request")
                #expect(badBody.json?["error"]?["message"]?.string?.isEmpty == false)
                let badLimit = try await call("GET", base, "/v1/online?limit=0")
                #expect(badLimit.status == 400)
                let badClient = try await call("POST", base, "/v1/connect-url", #"{"client":""}"#)
                #expect(badClient.status == 400)
            }
        }
    }

    @Test("connect URL, send, channels, presence, broadcast and force offline over HTTP")
    func everyOperation() async throws {
        try await TestCluster.with { cluster in
            try await withAPI(on: cluster) { base in
                let minted = try await call("POST", base, "/v1/connect-url", #"{"client":"alice","meta":"m1"}"#)
                let url = try #require(minted.json?["url"]?.string)
                let alice = try await TestClient.connect(to: url)
                #expect(try await alice.next(type: "ready")["client"]?.string == "alice")

                let sent = try await call(
                    "POST", base, "/v1/messages",
                    #"{"from":"bob","to":["alice","zed"],"data":{"n":12345678901234567890},"receipt":false}"#)
                #expect(sent.status == 200)
                #expect(sent.json?["offline"] == .array([.string("zed")]))
                guard case .text(let frame) = try await alice.next() else { throw TestClientError.closed }
                #expect(frame.contains("12345678901234567890"), "large numbers pass through exactly: \(frame)")

                let joined = try await call("POST", base, "/v1/clients/alice/join", #"{"channels":["room","lobby"]}"#)
                #expect(joined.json?["channels"] == .array([.string("lobby"), .string("room")]))
                let roomSend = try await call(
                    "POST", base, "/v1/channels/room/messages", #"{"from":"bob","data":"hey room"}"#)
                let roomID = try #require(roomSend.json?["id"]?.string)
                let roomMessage = try await alice.next(type: "message")
                #expect(roomMessage["id"]?.string == roomID)
                #expect(roomMessage["chan"]?.string == "room")

                let channels = try await call("GET", base, "/v1/channels")
                #expect(
                    channels.json?["channels"]
                        == .array([
                            .object(["name": .string("lobby"), "members": .number(1), "online": .number(1)]),
                            .object(["name": .string("room"), "members": .number(1), "online": .number(1)]),
                        ]))
                #expect(
                    try await call("GET", base, "/v1/channels/room/members").json?["clients"]
                        == .array([.string("alice")]))
                #expect(try await call("GET", base, "/v1/clients/alice/online").json?["online"] == .bool(true))
                let statuses = try await call("POST", base, "/v1/online", #"{"clients":["alice","zed"]}"#)
                #expect(statuses.json?["online"] == .object(["alice": .bool(true), "zed": .bool(false)]))
                let page = try await call("GET", base, "/v1/online?limit=1")
                #expect(page.json?["clients"] == .array([.string("alice")]))
                #expect(page.json?["next"]?.string == "alice")

                let left = try await call("POST", base, "/v1/clients/alice/leave", #"{"channels":["lobby"]}"#)
                #expect(left.json?["channels"] == .array([.string("room")]))
                let cleared = try await call("DELETE", base, "/v1/channels/room/members")
                #expect(cleared.json?["removed"] == .array([.string("alice")]))

                let broadcast = try await call("POST", base, "/v1/broadcasts", #"{"data":{"all":true}}"#)
                #expect(try await alice.next(type: "message")["id"]?.string == broadcast.json?["id"]?.string)

                let forced = try await call("POST", base, "/v1/clients/alice/offline")
                #expect(forced.status == 200)
                #expect(try await alice.closeCode() == 4003)
            }
        }
    }

    @Test("online and offline events stream as server-sent events")
    func eventStream() async throws {
        try await TestCluster.with { cluster in
            try await withAPI(on: cluster) { base in
                let port = try #require(URLComponents(string: base)?.port)
                let stream = try await StreamingHTTP.open(
                    port: port,
                    request: """
                        GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(Self.key)\r\n\r\n
                        """)
                _ = try await stream.read(until: ": connected")
                let client = try await cluster.connect("eve", meta: "tablet")
                let online = try await stream.read(until: "\n\n")
                #expect(online.contains("event: online"))
                #expect(online.contains(#""client":"eve""#))
                #expect(online.contains(#""meta":"tablet""#))
                await client.close()
                let offline = try await stream.read(until: "event: offline")
                #expect(offline.contains(#""client":"eve""#))
                await stream.close()
            }
        }
    }

    @Test("without an API key the API refuses to listen beyond loopback")
    func refusesOpenAPIWithoutKey() async throws {
        // The body's one expression is the #expect, so its error is the result.
        _ = try await TestCluster.with { cluster in
            #expect(throws: ServerAPIError.self) {
                _ = try ServerAPI.makeApplication(
                    helper: cluster.helper, configuration: ServerAPIConfiguration(host: "0.0.0.0"),
                    health: { .up }, logger: Logger(label: "t"))
            }
        }
    }
}
