import Foundation
import ImCore
import ImHelper
@testable import ImServerAPI
import ImTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

/// The lane that answers plain single sends and connect URLs ahead of Hummingbird
/// (``APIFastLane``): which requests it takes, that its answers are the router's, and that answers
/// keep their order and survive a shutdown.
@Suite("API fast lane", .timeLimit(.minutes(1)))
struct APIFastLaneTests {
    static let key = "fast-lane-api-key-0123456789"

    /// A request, and whether the lane takes it.
    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var bytes: [UInt8]
        var taken: Bool
        var description: String { name }
    }

    /// `POST path` with `body`; `fields` replace the usual ones (`Host`, JSON type, the key).
    static func post(
        _ path: String, _ body: String, fields: [String]? = nil, extra: [String] = [], version: String = "HTTP/1.1"
    ) -> [UInt8] {
        let usual = ["Host: 127.0.0.1", "Content-Type: application/json", "Authorization: Bearer \(key)"]
        let lines = (fields ?? usual) + extra + ["Content-Length: \(body.utf8.count)"]
        return Array("POST \(path) \(version)\r\n\(lines.joined(separator: "\r\n"))\r\n\r\n\(body)".utf8)
    }

    static let channelBody = #"{"from":"svc","data":{"n":1}}"#
    static let usersBody = #"{"from":"svc","to":["u1","u2","u1"],"data":[1,"two"],"receipt":true}"#

    /// Requests to an API with ``key``: the plain sends it takes, and the others it leaves.
    static let keyedCases: [Case] = [
        Case(name: "channel", bytes: post("/v1/channels/room/messages", channelBody), taken: true),
        Case(name: "users", bytes: post("/v1/messages", usersBody), taken: true),
        Case(name: "broadcast", bytes: post("/v1/broadcasts", #"{"data":"hi"}"#), taken: true),
        Case(name: "broadcast from", bytes: post("/v1/broadcasts", #"{"from":"svc","data":"hi"}"#), taken: true),
        Case(
            name: "X-API-Key",
            bytes: post(
                "/v1/channels/room/messages", channelBody,
                fields: ["Host: 127.0.0.1", "Content-Type: application/json", "X-API-Key: \(key)"]),
            taken: true),
        Case(
            name: "keep-alive, charset",
            bytes: post(
                "/v1/channels/room/messages", channelBody,
                fields: [
                    "Host: 127.0.0.1", "Content-Type: application/json; charset=utf-8",
                    "Authorization: Bearer \(key)", "Connection: keep-alive",
                ]),
            taken: true),
        Case(name: "encoded channel", bytes: post("/v1/channels/room%20one/messages", channelBody), taken: true),
        Case(
            name: "no key",
            bytes: post("/v1/messages", usersBody, fields: ["Host: 127.0.0.1", "Content-Type: application/json"]),
            taken: false),
        Case(
            name: "wrong key",
            bytes: post(
                "/v1/messages", usersBody,
                fields: ["Host: 127.0.0.1", "Content-Type: application/json", "Authorization: Bearer \(key)x"]),
            taken: false),
        Case(
            name: "two authorizations",
            bytes: post(
                "/v1/messages", usersBody, extra: ["Authorization: Bearer \(key)"]),
            taken: false),
        Case(
            name: "text body",
            bytes: post(
                "/v1/messages", usersBody,
                fields: ["Host: 127.0.0.1", "Content-Type: text/plain", "Authorization: Bearer \(key)"]),
            taken: false),
        Case(name: "not JSON", bytes: post("/v1/messages", #"{"from":"svc","#), taken: false),
        Case(name: "no data", bytes: post("/v1/channels/room/messages", #"{"from":"svc"}"#), taken: false),
        Case(name: "nobody", bytes: post("/v1/messages", #"{"from":"svc","to":[],"data":1}"#), taken: false),
        Case(name: "bad sender", bytes: post("/v1/messages", #"{"from":"","to":["a"],"data":1}"#), taken: false),
        Case(name: "escaped member", bytes: post("/v1/broadcasts", #"{"d\u0061ta":1}"#), taken: true),
        Case(name: "empty body", bytes: post("/v1/broadcasts", ""), taken: false),
        Case(name: "query", bytes: post("/v1/broadcasts?x=1", #"{"data":1}"#), taken: false),
        Case(name: "trailing slash", bytes: post("/v1/broadcasts/", #"{"data":1}"#), taken: false),
        Case(name: "empty channel", bytes: post("/v1/channels//messages", channelBody), taken: false),
        Case(
            name: "long channel",
            bytes: post("/v1/channels/\(String(repeating: "c", count: 201))/messages", channelBody),
            taken: false),
        Case(name: "nested channel", bytes: post("/v1/channels/a/b/messages", channelBody), taken: false),
        Case(
            name: "connection close", bytes: post("/v1/broadcasts", #"{"data":1}"#, extra: ["Connection: close"]),
            taken: false),
        Case(
            name: "expect", bytes: post("/v1/broadcasts", #"{"data":1}"#, extra: ["Expect: 100-continue"]), taken: false
        ),
        Case(
            name: "HTTP/1.0",
            bytes: post("/v1/broadcasts", #"{"data":1}"#, extra: ["Connection: keep-alive"], version: "HTTP/1.0"),
            taken: false),
        Case(
            name: "chunked",
            bytes: Array(
                ("POST /v1/broadcasts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Authorization: Bearer \(key)\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "a\r\n{\"data\":1}\r\n0\r\n\r\n").utf8),
            taken: false),
        Case(
            name: "too large",
            bytes: post(
                "/v1/broadcasts", #"{"data":""# + String(repeating: "x", count: APIRoutes.maximumBodyBytes) + #""}"#),
            taken: false),
        Case(name: "connect URL", bytes: post("/v1/connect-url", #"{"client":"u1"}"#), taken: true),
        Case(
            name: "connect URL, meta",
            bytes: post("/v1/connect-url", #"{"client":"u1","meta":"r\u00f4le \"a\""}"#), taken: true),
        Case(
            name: "connect URL, null meta", bytes: post("/v1/connect-url", #"{"client":"u1","meta":null}"#), taken: true
        ),
        Case(name: "connect URL, no client", bytes: post("/v1/connect-url", #"{"meta":"m"}"#), taken: false),
        Case(name: "connect URL, bad client", bytes: post("/v1/connect-url", #"{"client":""}"#), taken: false),
        Case(
            name: "connect URL, meta a number", bytes: post("/v1/connect-url", #"{"client":"u1","meta":1}"#),
            taken: false),
        Case(
            name: "connect URL, meta too long",
            bytes: post(
                "/v1/connect-url",
                #"{"client":"u1","meta":""# + String(repeating: "m", count: ImHelper.maximumMetaLength + 1) + #""}"#),
            taken: false),
        Case(name: "connect URLs", bytes: post("/v1/connect-urls", #"{"clients":[{"client":"u1"}]}"#), taken: false),
        Case(
            name: "GET",
            bytes: Array(
                "GET /v1/channels/room/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(key)\r\n\r\n"
                    .utf8),
            taken: false),
    ]

    /// Requests to an API without a key (on loopback): the checks against web pages.
    static let unkeyedCases: [Case] = [
        unkeyed("loopback", fields: ["Host: localhost:80"], taken: true),
        unkeyed("loopback origin", fields: ["Host: 127.0.0.1", "Origin: http://127.0.0.1:6002"], taken: true),
        unkeyed("foreign host", fields: ["Host: example.com"], taken: false),
        unkeyed("foreign origin", fields: ["Host: 127.0.0.1", "Origin: https://example.com"], taken: false),
        unkeyed("no host", fields: [], taken: false),
    ]

    /// A broadcast to an API without a key, with a JSON type and `fields`.
    static func unkeyed(_ name: String, fields: [String], taken: Bool) -> Case {
        Case(
            name: name,
            bytes: post("/v1/broadcasts", #"{"data":1}"#, fields: fields + ["Content-Type: application/json"]),
            taken: taken)
    }

    @Test("takes exactly the plain single sends and connect URLs, and answers each with its id or URL")
    func takesPlainSends() async throws {
        try await TestCluster.with { cluster in
            for (cases, key) in [(Self.keyedCases, Self.key), (Self.unkeyedCases, nil)] {
                for testCase in cases {
                    let settings = APIFastLane.Settings(
                        helper: cluster.helper, apiKey: key.map { Array($0.utf8) }, serverName: "imserver-api")
                    let channel = try await Self.laneChannel(settings)
                    try await channel.writeInbound(ByteBuffer(bytes: testCase.bytes))
                    let passed = try await channel.readInbound(as: HTTPServerRequestPart.self)
                    if testCase.taken {
                        #expect(passed == nil, "\(testCase) went on to the router")
                        guard passed == nil else { continue }
                        let head = try await channel.waitForOutboundWrite(as: HTTPServerResponsePart.self)
                        let body = try await channel.waitForOutboundWrite(as: HTTPServerResponsePart.self)
                        guard case .head(let response) = head, case .body(.byteBuffer(let bytes)) = body else {
                            Issue.record("\(testCase): no answer, but \(head) and \(body)")
                            continue
                        }
                        #expect(response.status == .ok, "\(testCase)")
                        #expect(response.headers.first(name: "Content-Type") == "application/json")
                        #expect(response.headers.first(name: "Content-Length") == "\(bytes.readableBytes)")
                        #expect(response.headers.first(name: "Server") == "imserver-api")
                        let answer = String(buffer: bytes)
                        if testCase.name.hasPrefix("connect URL") {
                            try await Self.expectConnectURL(answer, for: testCase, from: cluster.helper)
                        } else {
                            #expect(answer.hasPrefix(#"{"id":""#), "\(testCase): \(answer)")
                        }
                    } else if case .head = passed {
                        // Passed on as it came: the rest of the request follows it.
                        var last = passed
                        while let next = try await channel.readInbound(as: HTTPServerRequestPart.self) { last = next }
                        guard case .end = last else {
                            Issue.record("\(testCase): the request was not passed on whole")
                            continue
                        }
                        #expect(try await channel.readOutbound(as: HTTPServerResponsePart.self) == nil, "\(testCase)")
                    } else {
                        Issue.record("\(testCase) was taken: \(String(describing: passed))")
                    }
                    _ = try? await channel.finish()
                }
            }
        }
    }

    @Test("a connect URL goes on to the router when the keys sign only through the key collection")
    func connectURLWithKeysGoesToTheRouter() async throws {
        try await TestCluster.with { cluster in
            let helper = ImHelper(
                backplane: cluster.helper.backplane, tokens: ConnectTokens(keys: cluster.helper.tokens.keys),
                configuration: cluster.helper.configuration)
            let settings = APIFastLane.Settings(
                helper: helper, apiKey: Array(Self.key.utf8), serverName: "imserver-api")
            let channel = try await Self.laneChannel(settings)
            try await channel.writeInbound(ByteBuffer(bytes: Self.post("/v1/connect-url", #"{"client":"u1"}"#)))
            var parts: [String] = []
            while let part = try await channel.readInbound(as: HTTPServerRequestPart.self) {
                switch part {
                case .head(let head): parts.append("head \(head.uri)")
                case .body(let body): parts.append("body \(String(buffer: body))")
                case .end: parts.append("end")
                }
            }
            #expect(parts == ["head /v1/connect-url", #"body {"client":"u1"}"#, "end"])
            #expect(try await channel.readOutbound(as: HTTPServerResponsePart.self) == nil)
            _ = try? await channel.finish()
        }
    }

    @Test("its answers are the router's, field for field, for every request it takes or leaves")
    func answersMatchTheRouters() async throws {
        try await TestCluster.with { cluster in
            for (cases, key) in [(Self.keyedCases, Self.key), (Self.unkeyedCases, nil)] {
                var withLane = ServerAPIConfiguration(port: 0, apiKey: key)
                withLane.answersOnTheLoop = true
                var withoutLane = withLane
                withoutLane.answersOnTheLoop = false
                try await cluster.withServerAPI(configuration: withLane) { lanePort in
                    try await cluster.withServerAPI(configuration: withoutLane) { routerPort in
                        for testCase in cases {
                            let fromLane = try await Self.exchange(testCase.bytes, port: lanePort)
                            let fromRouter = try await Self.exchange(testCase.bytes, port: routerPort)
                            #expect(Self.normalized(fromLane) == Self.normalized(fromRouter), "\(testCase)")
                            if testCase.taken { #expect(fromLane.status == 200, "\(testCase): \(fromLane)") }
                        }
                    }
                }
            }
        }
    }

    @Test("a send that fails is answered as the router answers it (backplane down: 503)")
    func failedSendMatchesTheRouter() async throws {
        let presence = ControlledPresence()
        try await TestCluster.with(backplane: Backplane(bus: MemoryBus(), presence: presence)) { cluster in
            var withoutLane = ServerAPIConfiguration(port: 0, apiKey: Self.key)
            withoutLane.answersOnTheLoop = false
            try await cluster.withServerAPI(configuration: ServerAPIConfiguration(port: 0, apiKey: Self.key)) {
                lanePort in
                try await cluster.withServerAPI(configuration: withoutLane) { routerPort in
                    presence.goDown("presence unreachable (test)")
                    let request = Self.post("/v1/messages", Self.usersBody)
                    let fromLane = try await Self.exchange(request, port: lanePort)
                    let fromRouter = try await Self.exchange(request, port: routerPort)
                    #expect(fromLane.status == 503, "\(fromLane)")
                    #expect(fromLane.body.contains("backplane_unavailable"), "\(fromLane)")
                    #expect(Self.normalized(fromLane) == Self.normalized(fromRouter))
                    presence.comeBack()
                }
            }
        }
    }

    @Test("pipelined requests are answered in order while the lane's send waits")
    func pipelinedAnswersKeepTheirOrder() async throws {
        let presence = ControlledPresence()
        try await TestCluster.with(backplane: Backplane(bus: MemoryBus(), presence: presence)) { cluster in
            try await cluster.withServerAPI(configuration: ServerAPIConfiguration(port: 0, apiKey: Self.key)) { port in
                let arrivals = presence.holdLookups()
                // A send to users (its presence lookup held), the router's health answer, and a
                // channel send, in one write.
                let health = Array("GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
                let channel = Self.post("/v1/channels/room/messages", Self.channelBody)
                let connection = try await StreamingHTTP.open(
                    port: port, bytes: Self.post("/v1/messages", Self.usersBody) + health + channel)
                #expect(try await arrivals.next(timeout: .seconds(10)) != nil, "the send never looked its receivers up")
                presence.releaseLookups()
                let responses = try await connection.readResponses(3)
                await connection.close()
                #expect(responses.map(\.status) == [200, 200, 200], "\(responses)")
                #expect(responses[0].body.contains(#""offline":["u1","u2"]"#), "\(responses[0])")
                #expect(responses[1].body.contains(#""status":"up""#), "\(responses[1])")
                #expect(responses[2].body.hasPrefix(#"{"id":""#), "\(responses[2])")
            }
        }
    }

    @Test("a send on its way when the API shuts down is answered before the connection closes")
    func shutdownWaitsForTheAnswer() async throws {
        let presence = ControlledPresence()
        try await TestCluster.with(backplane: Backplane(bus: MemoryBus(), presence: presence)) { cluster in
            let ports = AsyncQueue<Int>()
            let app = try ServerAPI.makeApplication(
                helper: cluster.helper, configuration: ServerAPIConfiguration(port: 0, apiKey: Self.key),
                health: { .up }, logger: Logger(label: "lane-test"), onRunning: { ports.push($0) })
            let runner = ServiceRunner(service: app, logger: Logger(label: "lane-test"))
            do {
                let port = try #require(try await ports.next(timeout: .seconds(10)), "the API never reported its port")
                let arrivals = presence.holdLookups()
                let connection = try await StreamingHTTP.open(
                    port: port, bytes: Self.post("/v1/messages", Self.usersBody))
                #expect(try await arrivals.next(timeout: .seconds(10)) != nil, "the send never looked its receivers up")
                let stopping = Task { try await runner.stop() }
                // The listener closes first, then the connections are told to quiesce: once a new
                // connection is refused, the one whose send waits has been told.
                #expect(await Self.refusesConnections(port: port), "the API kept accepting connections")
                presence.releaseLookups()
                let text = try await connection.readToEnd()
                try await stopping.value
                #expect(text.hasPrefix("HTTP/1.1 200 OK"), "\(text)")
                #expect(text.contains(#""offline":["u1","u2"]"#), "\(text)")
            } catch {
                try? await runner.stop()
                throw error
            }
        }
    }

    @Test("what arrives while its send waits (half-close, shutdown) reaches the router after the answer")
    func eventsWaitForTheAnswer() async throws {
        let presence = ControlledPresence()
        try await TestCluster.with(backplane: Backplane(bus: MemoryBus(), presence: presence)) { cluster in
            let settings = APIFastLane.Settings(
                helper: cluster.helper, apiKey: Array(Self.key.utf8), serverName: "imserver-api")
            let recorder = ArrivalRecorder()
            let channel = try await Self.laneChannel(settings, recorder: recorder)
            let arrivals = presence.holdLookups()
            try await channel.writeInbound(ByteBuffer(bytes: Self.post("/v1/messages", Self.usersBody)))
            #expect(try await arrivals.next(timeout: .seconds(10)) != nil, "the send never looked its receivers up")
            try await channel.testingEventLoop.executeInContext {
                channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
                channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            }
            #expect(recorder.arrivals.isEmpty, "reached the router before the answer: \(recorder.arrivals)")
            presence.releaseLookups()
            let head = try await channel.waitForOutboundWrite(as: HTTPServerResponsePart.self)
            guard case .head(let response) = head else { throw TestClientError.closed }
            #expect(response.status == .ok)
            try await channel.testingEventLoop.executeInContext {}
            #expect(recorder.arrivals == ["inputClosed", "quiesce"])
            _ = try? await channel.finish()

            // A request whose body the half-close cut short goes on to the router as it came,
            // followed by the event (the lane keeps nothing waiting for a body that cannot come).
            let cutRecorder = ArrivalRecorder()
            let cutChannel = try await Self.laneChannel(settings, recorder: cutRecorder)
            let cut = Array(Self.post("/v1/messages", Self.usersBody).dropLast(10))
            try await cutChannel.writeInbound(ByteBuffer(bytes: cut))
            #expect(cutRecorder.arrivals.isEmpty, "the lane did not take the request: \(cutRecorder.arrivals)")
            try await cutChannel.testingEventLoop.executeInContext {
                cutChannel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            }
            #expect(cutRecorder.arrivals.prefix(2) == ["head", "body"], "\(cutRecorder.arrivals)")
            #expect(cutRecorder.arrivals.last == "inputClosed", "\(cutRecorder.arrivals)")
            _ = try? await cutChannel.finish()
        }
    }

    @Test("the Date field is RFC 9110's IMF-fixdate")
    func dateFormat() {
        #expect(HTTPDate.text(ofSecond: 784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.text(ofSecond: 0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.text(ofSecond: 1_796_083_200) == "Tue, 01 Dec 2026 00:00:00 GMT")
        #expect(HTTPDate.now.hasSuffix(" GMT"))
    }

    /// Checks that `answer` holds a connect URL whose token `helper` verifies for the client and
    /// meta the request of `testCase` names.
    private static func expectConnectURL(_ answer: String, for testCase: Case, from helper: ImHelper) async throws {
        let body = try #require(String(decoding: testCase.bytes, as: UTF8.self).split(separator: "\r\n\r\n").last)
        let request = try JSONDecoder().decode([String: String?].self, from: Data(body.utf8))
        let url = try #require(try JSONDecoder().decode([String: String].self, from: Data(answer.utf8))["url"])
        let token = try #require(URLComponents(string: url)?.queryItems?.first { $0.name == "token" }?.value)
        let verified = try await helper.tokens.verify(token)
        #expect(verified.client.rawValue == request["client"] ?? nil, "\(testCase)")
        #expect(verified.meta == request["meta"] ?? nil, "\(testCase)")
    }

    /// A test channel of the HTTP/1 decoder, a lane with `settings`, and `recorder` after it.
    private static func laneChannel(_ settings: APIFastLane.Settings, recorder: ArrivalRecorder? = nil)
        async throws -> NIOAsyncTestingChannel
    {
        try await NIOAsyncTestingChannel { channel in
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(HTTPRequestDecoder()),
                APIFastLane(settings: settings, logger: Logger(label: "lane-test")),
            ])
            if let recorder { try channel.pipeline.syncOperations.addHandler(recorder) }
        }
    }

    /// Whether connections to `port` are refused within ten seconds.
    private static func refusesConnections(port: Int) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            guard let connection = try? await StreamingHTTP.open(port: port, bytes: []) else { return true }
            await connection.close()
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    /// Sends `bytes` on a connection of its own; the first response.
    private static func exchange(_ bytes: [UInt8], port: Int) async throws -> RawHTTPResponse {
        let connection = try await StreamingHTTP.open(port: port, bytes: bytes)
        do {
            let response = try await connection.readResponses(1)[0]
            await connection.close()
            return response
        } catch {
            await connection.close()
            throw error
        }
    }

    /// `response` with what differs from answer to answer (the date, message ids, tokens) blanked.
    private static func normalized(_ response: RawHTTPResponse) -> RawHTTPResponse {
        var normalized = response
        // A token's length varies with its expiry's digits.
        let hasToken = response.body.contains("token=")
        normalized.fields = response.fields.map {
            let field = $0.lowercased()
            if field.hasPrefix("date:") { return "Date: <date>" }
            return hasToken && field.hasPrefix("content-length:") ? "Content-Length: <length>" : $0
        }
        normalized.body = response.body
            .replacingOccurrences(of: #""id":"[0-9a-f]{20}""#, with: #""id":"<id>""#, options: .regularExpression)
            .replacingOccurrences(of: #"token=[A-Za-z0-9_.-]+"#, with: "token=<token>", options: .regularExpression)
        return normalized
    }
}

/// Records what reaches the end of a test pipeline: request parts by kind, and events.
private final class ArrivalRecorder: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    private let recorded = Mutex<[String]>([])

    /// What arrived so far.
    var arrivals: [String] { recorded.withLock { $0 } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let name =
            switch unwrapInboundIn(data) {
            case .head: "head"
            case .body: "body"
            case .end: "end"
            }
        recorded.withLock { $0.append(name) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        let name =
            switch event {
            case ChannelEvent.inputClosed as ChannelEvent: "inputClosed"
            case is ChannelShouldQuiesceEvent: "quiesce"
            default: "\(event)"
            }
        recorded.withLock { $0.append(name) }
    }
}
