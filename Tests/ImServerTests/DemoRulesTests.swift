import Foundation
import ImCore
import ImHelper
import ImServer
import ImTesting
import Logging
import ServiceLifecycle
import Testing

@testable import ImServerAPI

/// What the demo's endpoints accept, and where its presence announcements go.
@Suite("Demo rules")
struct DemoRulesTests {
    /// Runs `body` with a cluster whose node 0 serves the demo; stops both whatever happens.
    private func withDemo(_ body: (TestCluster, Int) async throws -> Void) async throws {
        try await TestCluster.with { cluster in
            var routes = PublicRoutes()
            routes.addDemo(helper: cluster.helper)
            let node = ImNode(
                configuration: NodeConfiguration(nodeID: "demo-rules", port: 0), backplane: cluster.backplane,
                tokens: cluster.helper.tokens, routes: routes, logger: Logger(label: "demo-rules"))
            try await ServiceRunner.with(node, logger: Logger(label: "demo-rules")) {
                try await body(cluster, try #require(await node.transport.waitUntilBound()))
            }
        }
    }

    private func post(_ port: Int, _ path: String, _ body: String) async throws -> (status: Int, text: String) {
        try await StreamingHTTP.exchange(
            port: port, "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/json\r\n",
            body: body)
    }

    @Test("the name 'system' and names over 32 bytes are refused; an empty or over-long text is refused, not cut")
    func limits() async throws {
        try await withDemo { _, port in
            for (name, words) in [("system", "reserved"), (String(repeating: "é", count: 17), "1 to 32 bytes")] {
                let query = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? name
                let (status, text) = try await StreamingHTTP.exchange(
                    port: port, "GET /demo/login?user=\(query) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n")
                #expect(status == 400, "\(name): \(text)")
                #expect(text.contains(words), "\(name): \(text)")
            }
            let long = String(repeating: "x", count: 2001)
            for (path, body) in [
                ("/demo/room", #"{"from":"alice","text":"\#(long)"}"#),
                ("/demo/send", #"{"from":"alice","to":"bob","text":"\#(long)"}"#),
                ("/demo/room", #"{"from":"alice","text":""}"#),
            ] {
                let (status, text) = try await post(port, path, body)
                #expect(status == 400, "\(path): \(text.prefix(200))")
                #expect(text.contains("1 to 2000 characters"), "\(path): \(text.prefix(200))")
            }
            let (status, _) = try await post(port, "/demo/room", #"{"from":"alice","text":"\#(long.dropLast())"}"#)
            #expect(status == 200, "2,000 characters are accepted")
        }
    }

    @Test("presence announcements go to the demo's room only, as channel messages from system")
    func announcementsStayInTheRoom() async throws {
        try await withDemo { cluster, _ in
            try await ServiceRunner.with(DemoAnnouncer(helper: cluster.helper), logger: Logger(label: "a")) {
                let member = try await cluster.connect("member")
                try await cluster.helper.join("member", channels: ["lobby"])
                let outsider = try await cluster.connect("outsider")
                // The outsider's arrival is announced in the room: the member sees it.
                let seen = try await member.next(type: "message")
                #expect(seen["from"]?.string == "system")
                #expect(seen["chan"]?.string == "lobby")
                #expect(seen["broadcast"] == nil)
                // The outsider got nothing: a ping is answered before any other frame.
                try await outsider.send(text: #"{"type":"ping"}"#)
                #expect(try await outsider.nextJSON()["type"]?.string == "pong")
                await member.close()
                await outsider.close()
            }
        }
    }

    @Test("a broadcast's frame says so; channel and direct messages do not carry the flag")
    func broadcastFlag() async throws {
        try await TestCluster.with { cluster in
            let reader = try await cluster.connect("reader")
            try await cluster.helper.join("reader", channels: ["room"])
            try await cluster.helper.broadcast(.text("all"))
            try await cluster.helper.send(.text("room"), from: "x", toChannel: "room")
            try await cluster.helper.send(.text("direct"), from: "x", to: ["reader"])
            let frames = [
                try await reader.next(type: "message"), try await reader.next(type: "message"),
                try await reader.next(type: "message"),
            ]
            #expect(frames[0]["broadcast"] == .bool(true))
            #expect(frames[1]["broadcast"] == nil && frames[1]["chan"]?.string == "room")
            #expect(frames[2]["broadcast"] == nil && frames[2]["chan"] == nil)
            await reader.close()
        }
    }
}
