import Foundation
import Hummingbird
import ImBackplane
import ImClient
import ImCore
import ImHelper
import ImServer
import ImTesting
import Logging
import Testing

@testable import ImServerAPI

@Suite("Server API: batch endpoints and the send endpoints' request bodies")
struct BatchAPITests {
    static let key = "batch-api-key-0123456789"

    /// Runs `body` with a one-node cluster on `backplane` and its API; stops both whatever happens.
    private func withAPI(
        backplane: Backplane = .memory(), _ body: (TestCluster, _ call: Call) async throws -> Void
    ) async throws {
        try await TestCluster.with(backplane: backplane) { cluster in
            try await cluster.withServerAPI(configuration: ServerAPIConfiguration(port: 0, apiKey: Self.key)) { port in
                try await body(cluster, Call(base: "http://127.0.0.1:\(port)"))
            }
        }
    }

    /// Sends requests to the API with its key.
    struct Call {
        let base: String

        func callAsFunction(_ method: String, _ path: String, _ body: String? = nil) async throws -> HTTPResult {
            try await httpRequest(method, base + path, body: body, headers: ["Authorization": "Bearer \(key)"])
        }
    }

    @Test("a mixed batch is answered item by item, in order; refused items do not stop the others")
    func mixedBatch() async throws {
        try await withAPI { cluster, call in
            let alice = try await cluster.session("alice")
            try await cluster.helper.join("alice", channels: ["room"])
            let response = try await call(
                "POST", "/v1/batch",
                """
                {"messages":[
                  {"from":"bob","to":["alice","zed"],"data":{"n":1}},
                  {"from":"bob","channel":"room","data":"two"},
                  {"broadcast":true,"data":[3]},
                  {"from":"bob","data":"no target"},
                  {"from":"bob","to":["alice"],"channel":"room","data":"two targets"},
                  {"from":"","to":["alice"],"data":"bad sender"},
                  {"from":"bob","to":["alice"]},
                  {"from":"bob","channel":"","data":"bad channel"},
                  {"from":"bob","to":"alice","data":"to is not an array"},
                  7,
                  {"from":"bob","to":["alice"],"data":  {"last" : true}}
                ]}
                """)
            #expect(response.status == 200, "\(response.text)")
            let results = try #require(response.json?["results"]?.array)
            #expect(results.count == 11)
            #expect(response.json?["failed"] == .number(7), "\(response.text)")
            #expect(results[0]["offline"] == .array([.string("zed")]))
            #expect(results[1]["offline"] == nil, "a channel message has no offline list")
            #expect(results[2]["id"]?.string?.isEmpty == false)
            let refusals: [Int: String] = [
                3: "exactly one of", 4: "exactly one of", 5: "messages[5].from", 6: "missing field 'data'",
                7: "invalid channel", 8: "messages[8].to must be an array of strings",
                9: "messages[9] is not a JSON object",
            ]
            for (index, words) in refusals {
                #expect(results[index]["error"]?["code"]?.string == "invalid_request", "item \(index)")
                let message = results[index]["error"]?["message"]?.string ?? ""
                #expect(message.contains(words), "item \(index): \(message)")
            }
            // Alice gets the four sent items in order, each with the id its result gave.
            let sentIDs = [0, 1, 2, 10].compactMap { results[$0]["id"]?.string }
            #expect(sentIDs.count == 4)
            var received: [String] = []
            for _ in 0..<4 { received.append(try await alice.nextMessage().id) }
            #expect(received == sentIDs)
            await alice.close()
        }
    }

    @Test("the message body is passed on as the bytes the back-end sent")
    func bodyPassesThroughUnchanged() async throws {
        try await withAPI { cluster, call in
            let alice = try await cluster.connect("alice")
            let data = #"{ "n" : 12345678901234567890, "s" : "\u00e9\/" }"#
            let single = try await call("POST", "/v1/messages", #"{"from":"bob","to":["alice"],"data":"# + data + "}")
            #expect(single.status == 200)
            guard case .text(let frame) = try await alice.next() else { throw TestClientError.closed }
            #expect(frame.contains(#""data":"# + data), "\(frame)")
            await alice.close()
        }
    }

    @Test("a batch that is not one fails as a whole: 400, or 413 beyond the byte limit")
    func wholeRequestErrors() async throws {
        try await withAPI { _, call in
            let item = #"{"broadcast":true,"data":1}"#
            let tooMany = "{\"messages\":[" + Array(repeating: item, count: 1001).joined(separator: ",") + "]}"
            let cases: [(String, Int, String)] = [
                (tooMany, 400, "at most 1000"),
                (#"{"messages":[]}"#, 400, "at least one"),
                (#"{"messages":{}}"#, 400, "missing field 'messages'"),
                (#"[1,2]"#, 400, "not a JSON object"),
                (#"{"messages":[1,]}"#, 400, "not a JSON object"),
                (
                    "{\"messages\":[{\"broadcast\":true,\"data\":\"" + String(repeating: "x", count: 2 << 20) + "\"}]}",
                    413, "too_large"
                ),
            ]
            for (body, status, words) in cases {
                let response = try await call("POST", "/v1/batch", body)
                #expect(response.status == status, "\(body.prefix(60)): \(response.text)")
                #expect(response.text.contains(words), "\(body.prefix(60)): \(response.text)")
            }
            let exactlyMost = "{\"messages\":[" + Array(repeating: item, count: 1000).joined(separator: ",") + "]}"
            let accepted = try await call("POST", "/v1/batch", exactlyMost)
            #expect(accepted.status == 200)
            #expect(accepted.json?["failed"] == .number(0))
            #expect(accepted.json?["results"]?.array?.count == 1000)
        }
    }

    @Test("many connect URLs in one request, each usable, failing item by item")
    func connectURLs() async throws {
        try await withAPI { _, call in
            let response = try await call(
                "POST", "/v1/connect-urls",
                """
                {"clients":[{"client":"ann","meta":"phone"},{"client":""},{"client":"bo","meta":"\(
                    String(repeating: "m", count: 3000))"},{"client":"cy"}]}
                """)
            #expect(response.status == 200, "\(response.text)")
            let urls = try #require(response.json?["urls"]?.array)
            #expect(urls.count == 4)
            #expect(response.json?["failed"] == .number(2))
            #expect(urls[1]["error"]?["message"]?.string?.contains("clients[1].client") == true, "\(urls[1])")
            #expect(urls[2]["error"]?["message"]?.string?.contains("meta") == true, "\(urls[2])")
            for (index, name) in [(0, "ann"), (3, "cy")] {
                #expect(urls[index]["client"]?.string == name)
                let client = try await TestClient.connect(to: try #require(urls[index]["url"]?.string))
                #expect(try await client.next(type: "ready")["client"]?.string == name)
                await client.close()
            }
        }
    }

    @Test("with presence down, messages to users fail in the batch while channel messages go out")
    func backplaneFailureIsPerItem() async throws {
        let presence = ControlledPresence()
        try await withAPI(backplane: Backplane(bus: MemoryBus(), presence: presence)) { cluster, call in
            let alice = try await cluster.session("alice")
            try await cluster.helper.join("alice", channels: ["room"])
            presence.goDown("presence unreachable (test)")
            let response = try await call(
                "POST", "/v1/batch",
                #"{"messages":[{"from":"bob","to":["alice"],"data":1},{"from":"bob","channel":"room","data":2}]}"#)
            #expect(response.status == 200, "\(response.text)")
            let results = try #require(response.json?["results"]?.array)
            #expect(results[0]["error"]?["code"]?.string == "backplane_unavailable")
            #expect(results[1]["id"]?.string == (try await alice.nextMessage()).id)
            #expect(response.json?["failed"] == .number(1))
            presence.comeBack()
            await alice.close()
        }
    }

    @Test("the send endpoints name the field that is wrong")
    func fieldErrors() async throws {
        try await withAPI { _, call in
            let cases: [(String, String, String)] = [
                ("/v1/messages", #"{"from":"a","to":"b","data":1}"#, "field 'to' must be an array of strings"),
                ("/v1/messages", #"{"from":"a","to":[],"data":1}"#, "must name at least one client"),
                (
                    "/v1/messages", #"{"from":"a","to":["b"],"data":1,"receipt":"yes"}"#,
                    "field 'receipt' must be true or false"
                ),
                ("/v1/messages", #"{"from":1,"to":["b"],"data":1}"#, "field 'from' must be a string"),
                ("/v1/messages", #"{"from":"a","from":"b","to":["b"],"data":1}"#, "duplicate member"),
                ("/v1/channels/room/messages", #"{"from":"a"}"#, "missing field 'data'"),
                ("/v1/broadcasts", #"{"data":1} x"#, "text after the object"),
                ("/v1/connect-url", #"{"meta":"m"}"#, "missing field 'client'"),
            ]
            for (path, body, words) in cases {
                let response = try await call("POST", path, body)
                #expect(response.status == 400, "\(path) \(body)")
                #expect(
                    response.json?["error"]?["message"]?.string?.contains(words) == true, "\(body): \(response.text)")
            }
        }
    }
}
