import Foundation
import ImCore
import ImTesting
import Synchronization
import Testing

/// One node shared by the protocol-strictness cases (each uses its own connection); the
/// resource cases start their own node so RSS readings are their own.
private let sharedNode = Task { try await HostileNode.start() }

/// The close code a WebSocket protocol violation is answered with: 1002 (RFC 6455 §7.4.1,
/// docs/protocol.md). Before the hardening fixes the node sent 1007 `protocol error` for the
/// violations NIO's decoder reports, and nothing for the others.
private let protocolErrorCodes: Set<UInt16> = [1002]

/// What a node did after a client sent something.
enum Reaction: Equatable, CustomStringConvertible {
    /// It sent a close frame with this code (nil: an empty close frame).
    case closed(UInt16?)
    /// It dropped the TCP connection without a close frame.
    case droppedWithoutCloseFrame
    /// It went on: it answered the probe ping sent after the input.
    case ignored
    /// Nothing within the timeout.
    case silent

    var description: String {
        switch self {
        case .closed(let code): "close frame \(code.map(String.init) ?? "without code")"
        case .droppedWithoutCloseFrame: "TCP close without a close frame"
        case .ignored: "ignored it (answered the next ping)"
        case .silent: "no answer within the timeout"
        }
    }
}

/// The highest RSS seen, shared by concurrent samplers.
private final class Peak: Sendable {
    private let value: Mutex<Int>
    init(_ value: Int) { self.value = Mutex(value) }
    func withLock<T>(_ body: (inout Int) -> T) -> T { value.withLock { body(&$0) } }
}

/// Hostile clients against a real `imserver` process: floods, connection churn, limits under
/// concurrency, ack storms, and RFC 6455 violations. Each case ends by checking that a normal
/// client still connects, gets a message sent through the server API and gets a `pong`.
@Suite("Hostile clients against a real imserver process", .serialized)
struct HostileClientTests {
    // MARK: Helpers

    /// Sends `bytes` on a fresh upgraded connection, then a masked WebSocket ping with a marker
    /// payload (legal between fragments too), and reports what the node did.
    private func reaction(to bytes: [UInt8], node: HostileNode, probe: Bool = true) async throws -> Reaction {
        let connection = try await node.rawClient("bad-\(Int.random(in: 0..<1_000_000_000))")
        defer { Task { await connection.close() } }
        let marker = Array("probe-\(Int.random(in: 0..<1_000_000))".utf8)
        try await connection.write(bytes)
        if probe { _ = try? await connection.write(WireFrame.make(opcode: WireFrame.ping, payload: marker)) }
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            let frame: RawConnection.Frame
            do {
                frame = try await connection.readFrame(deadline: deadline)
            } catch {
                return error.ending == .closed ? .droppedWithoutCloseFrame : .silent
            }
            if frame.opcode == WireFrame.close {
                // Answer it, as a client does, so the node can close at once.
                _ = try? await connection.write(WireFrame.close(code: frame.closeCode ?? 1000))
                return .closed(frame.closeCode)
            }
            if frame.opcode == WireFrame.pong && frame.payload == marker { return .ignored }
        }
    }

    private func expectProtocolError(
        _ bytes: [UInt8], _ what: String, codes: Set<UInt16> = protocolErrorCodes,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let node = try await sharedNode.value
        let reaction = try await reaction(to: bytes, node: node)
        let code: UInt16? = if case .closed(let code) = reaction { code } else { nil }
        #expect(
            code.map(codes.contains) == true,
            "\(what): expected a close frame with \(codes.sorted()), the node \(reaction)",
            sourceLocation: sourceLocation)
        try await node.expectStillServing(sourceLocation: sourceLocation)
    }

    private func handshake(_ request: [UInt8], node: HostileNode) async throws -> RawConnection.Response {
        let connection = try await RawConnection.connect(port: node.port)
        defer { Task { await connection.close() } }
        try await connection.write(request)
        return try await connection.readResponse()
    }

    // MARK: (a) Pipelined HTTP flood

    @Test(
        "(a) pipelined HTTP flood: a client that writes GET /imclient.js back to back for 4 s and never reads does not grow the node's RSS by more than 64 MiB"
    )
    func pipelinedHTTPFlood() async throws {
        let node = try await HostileNode.start()
        try await node.expectStillServing()
        let baseline = try node.rss()
        let connection = try await RawConnection.connect(port: node.port, autoRead: false)
        let request = Array("GET /imclient.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        let chunk = Array([[UInt8]](repeating: request, count: 64 * 1024 / request.count).joined())
        var written = 0
        var peak = baseline
        var stalled = false
        let limit = 64 * 1_048_576
        let end = ContinuousClock.now + .seconds(4)
        _ = await repeatFor(.seconds(4)) {
            // Waits at most until the end: a node that stops reading (or closes) ends the flood.
            let remaining = max(end - .now, .milliseconds(50))
            guard (try? await connection.write(chunk, timeout: remaining)) == true else {
                stalled = true
                return false
            }
            written += chunk.count
            peak = max(peak, (try? node.rss()) ?? peak)
            return peak - baseline <= limit  // over the bound: fail now rather than grow further
        }
        peak = max(peak, (try? node.rss()) ?? peak)
        await connection.close()
        #expect(
            peak - baseline <= limit,
            "RSS grew by \(mib(peak - baseline)) (baseline \(mib(baseline))) after \(mib(written)) of pipelined requests; stalled: \(stalled)"
        )
        try await node.expectStillServing()
        await node.stop()
    }

    // MARK: (b) Connect/close churn

    /// Opens `count` WebSocket connections (`concurrency` at a time), each upgraded, read up to
    /// `ready`, then closed with a close frame; waits until the node counts none open.
    private func churn(_ node: HostileNode, count: Int, concurrency: Int = 16) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var index = worker
                    while index < count {
                        let connection = try await RawConnection.connect(port: node.port)
                        try await connection.write(
                            node.upgradeRequest(
                                token: try await node.token(for: "churn-\(index % 1000)", lifetime: .seconds(3))))
                        let response = try await connection.readResponse()
                        try #require(response.status == 101, "connection \(index): \(response.status) \(response.body)")
                        _ = try await connection.readFrame()  // ready
                        try await connection.write(WireFrame.close(code: 1000))
                        _ = await connection.waitUntilClosed(timeout: .seconds(5))
                        await connection.close()
                        index += concurrency
                    }
                }
            }
            try await group.waitForAll()
        }
        try await waitUntil(timeout: .seconds(20)) { await node.openConnections() == 0 }
    }

    @Test("(b) connect/close churn: 12,000 connections after a warm-up of 6,000 leave the node's RSS within 4 MiB")
    func connectCloseChurn() async throws {
        // One address opens all of them: lift the per-address handshake budget (where the node has one).
        let node = try await HostileNode.start(["IM_LIMITS_HANDSHAKES_PER_SOURCE": "10000000"])
        let batch = 3000
        // Warm-up: allocator arenas, dictionaries, and the table of claimed token ids, which
        // keeps each id for the token's lifetime (3 s) + 5 s: about two batches' worth.
        try await churn(node, count: batch)
        try await churn(node, count: batch)
        let afterWarmUp = try node.rss()
        var samples = [afterWarmUp]
        for _ in 0..<4 {
            try await churn(node, count: batch)
            samples.append(try node.rss())
        }
        let growth = (samples.last ?? afterWarmUp) - afterWarmUp
        // A leak of ~950 bytes per connection is 10.9 MiB over these 12,000; malloc's own noise
        // was seen up to 2.4 MiB, so the bound sits between the two.
        #expect(
            growth < 4 * 1_048_576,
            "RSS \(samples.map(mib)) over four batches of \(batch): \(growth / (4 * batch)) bytes per connection")
        try await node.expectStillServing()
        await node.stop()
    }

    // MARK: (c) Ping flood

    @Test(
        "(c) ping flood: two connections sending 125-byte pings as fast as they can for up to 10 s and never reading do not grow the node's RSS by more than 32 MiB"
    )
    func pingFlood() async throws {
        let node = try await HostileNode.start()
        try await node.expectStillServing()
        let baseline = try node.rss()
        let ping = WireFrame.make(opcode: WireFrame.ping, payload: [UInt8](repeating: 0x61, count: 125))
        let chunk = Array([[UInt8]](repeating: ping, count: 500).joined())
        var connections: [RawConnection] = []
        // A small receive buffer: the kernel holds little of the node's answers, the node has to.
        for index in 0..<2 {
            connections.append(try await node.rawClient("pinger-\(index)", autoRead: false, receiveBufferSize: 4096))
        }
        // Per connection the documented bound is the write buffer's high water mark plus
        // limits.maxQueuedBytes (4.25 MiB); 16 MiB each leaves room for allocator overhead.
        let limit = 32 * 1_048_576
        let peak = Peak(baseline)
        let flooders = connections
        // Long enough to fill the kernel's socket buffers (several MiB per loopback connection)
        // and keep going: until they are full, the node's answers cost it no memory.
        let end = ContinuousClock.now + .seconds(10)
        let written = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for connection in flooders {
                group.addTask {
                    var written = 0
                    var stalled = false
                    _ = await repeatFor(.seconds(10)) {
                        let remaining = max(end - .now, .milliseconds(50))
                        guard (try? await connection.write(chunk, timeout: remaining)) == true else {
                            stalled = true
                            return false
                        }
                        written += chunk.count
                        if let rss = try? node.rss() { peak.withLock { $0 = max($0, rss) } }
                        return peak.withLock { $0 } - baseline <= limit
                    }
                    return (written, stalled)
                }
            }
            var results: [(Int, Bool)] = []
            for try await result in group { results.append(result) }
            return results
        }
        if let rss = try? node.rss() { peak.withLock { $0 = max($0, rss) } }
        let growth = peak.withLock { $0 } - baseline
        for connection in connections { await connection.close() }
        #expect(
            growth <= limit,
            "RSS grew by \(mib(growth)) (baseline \(mib(baseline))); written per connection, stalled: \(written.map { "\(mib($0.0)) \($0.1)" })"
        )
        try await node.expectStillServing()
        await node.stop()
    }

    // MARK: (d) Limits under concurrent handshakes

    /// Sends `tokens.count` upgrade requests at once (the sockets are connected first) and
    /// returns how many were answered 101, and the other statuses.
    private func simultaneousHandshakes(_ node: HostileNode, tokens: [String]) async throws -> (
        upgraded: Int, others: [Int: Int]
    ) {
        var connections: [RawConnection] = []
        for _ in tokens { connections.append(try await RawConnection.connect(port: node.port)) }
        let requests = tokens.map { node.upgradeRequest(token: $0) }
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for (connection, request) in zip(connections, requests) {
                group.addTask {
                    try await connection.write(request)
                    return try await connection.readResponse(timeout: .seconds(10)).status
                }
            }
            var statuses: [Int] = []
            for try await status in group { statuses.append(status) }
            return statuses
        }
        for connection in connections { await connection.close() }
        try await waitUntil(timeout: .seconds(10)) { await node.openConnections() == 0 }
        var others: [Int: Int] = [:]
        for status in statuses where status != 101 { others[status, default: 0] += 1 }
        return (statuses.count { $0 == 101 }, others)
    }

    @Test(
        "(d) 80 simultaneous handshakes on a node limited to 20 connections: at most 20 upgrade; 16 for one user limited to 4: at most 4 upgrade"
    )
    func limitsUnderConcurrentHandshakes() async throws {
        let node = try await HostileNode.start([
            "IM_LIMITS_CONNECTIONS_PER_NODE": "20", "IM_LIMITS_CONNECTIONS_PER_USER": "4",
        ])
        var tokens: [String] = []
        for index in 0..<80 { tokens.append(try await node.token(for: "crowd-\(index)")) }
        let crowd = try await simultaneousHandshakes(node, tokens: tokens)
        #expect(
            crowd.upgraded <= 20, "\(crowd.upgraded) of 80 upgraded on a node limited to 20; others: \(crowd.others)")
        #expect(crowd.upgraded >= 1, "some handshakes must succeed")

        tokens = []
        for _ in 0..<16 { tokens.append(try await node.token(for: "greedy")) }
        let greedy = try await simultaneousHandshakes(node, tokens: tokens)
        #expect(
            greedy.upgraded <= 4,
            "\(greedy.upgraded) of 16 upgraded for one user limited to 4; others: \(greedy.others)")
        #expect(greedy.upgraded >= 1, "some handshakes must succeed")
        try await node.expectStillServing()
        await node.stop()
    }

    // MARK: (e) Acks beyond the pending window

    @Test("(e) a client that reads 1,200 receipt-requesting messages late and acks each one is not closed with 4029")
    func acksBeyondPendingWindow() async throws {
        let node = try await HostileNode.start()
        let receiver = try await node.client("acker")
        let total = 1200
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for index in stride(from: worker, to: total, by: 8) {
                        try await node.send("m\(index)", from: "boss", to: ["acker"], receipt: true)
                    }
                }
            }
            try await group.waitForAll()
        }
        var ids: [String] = []
        for _ in 0..<total {
            let message = try await receiver.next(type: "message", timeout: .seconds(10))
            #expect(message["receipt"] == .bool(true))
            ids.append(try #require(message["id"]?.string))
        }
        var acked = 0
        for id in ids {
            do { try await receiver.send(text: #"{"type":"ack","id":"\#(id)"}"#) } catch { break }
            acked += 1
        }
        if acked == total { try? await receiver.send(text: #"{"type":"ping"}"#) }
        let answer = try? await receiver.next(timeout: .seconds(10))
        #expect(
            answer == .text(#"{"type":"pong"}"#),
            "after \(acked) of \(total) acks the node answered \(answer.map { "\($0)" } ?? "nothing") instead of a pong"
        )
        await receiver.close()
        try await node.expectStillServing()
        await node.stop()
    }

    // MARK: (f) Fragmentation errors

    @Test(
        "(f) fragmentation errors are answered with a protocol-error close frame before the TCP close",
        arguments: [
            "continuation frame with no message started",
            "new text frame while a fragmented message is open",
            "fragmented ping (control frame without FIN)",
            "fragmented close (control frame without FIN)",
            "ping with a 126-byte payload (control frame over 125 bytes)",
            "close with a 126-byte payload (control frame over 125 bytes)",
        ])
    func fragmentationErrors(_ name: String) async throws {
        let bytes: [UInt8] =
            switch name {
            case "continuation frame with no message started":
                WireFrame.make(opcode: WireFrame.continuation, payload: Array(#"{"type":"ping"}"#.utf8))
            case "new text frame while a fragmented message is open":
                WireFrame.text(#"{"type":"#, fin: false) + WireFrame.text(#"{"type":"ping"}"#)
            case "fragmented ping (control frame without FIN)":
                WireFrame.make(opcode: WireFrame.ping, payload: Array("abc".utf8), fin: false)
            case "fragmented close (control frame without FIN)":
                WireFrame.make(opcode: WireFrame.close, payload: [0x03, 0xE8], fin: false)
            case "ping with a 126-byte payload (control frame over 125 bytes)":
                WireFrame.make(opcode: WireFrame.ping, payload: [UInt8](repeating: 0x61, count: 126))
            default:
                WireFrame.make(opcode: WireFrame.close, payload: [0x03, 0xE8] + [UInt8](repeating: 0x61, count: 124))
            }
        try await expectProtocolError(bytes, name)
    }

    // MARK: (g) RFC 6455 strictness

    @Test("(g) an unmasked client frame is refused with 1002")
    func unmaskedFrame() async throws {
        try await expectProtocolError(
            WireFrame.text(#"{"type":"ping"}"#, masked: false), "unmasked text frame", codes: [1002])
    }

    @Test("(g) RSV bits without a negotiated extension are refused with 1002", arguments: [UInt8(1), 2, 4, 7])
    func reservedBits(_ rsv: UInt8) async throws {
        let frame = WireFrame.make(opcode: WireFrame.text, payload: Array(#"{"type":"ping"}"#.utf8), rsv: rsv)
        try await expectProtocolError(frame, "text frame with RSV \(rsv)", codes: [1002])
    }

    @Test("(g) reserved opcodes are refused with 1002", arguments: [UInt8(3), 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    func reservedOpcodes(_ opcode: UInt8) async throws {
        try await expectProtocolError(
            WireFrame.make(opcode: opcode, payload: Array("x".utf8)), "opcode \(opcode)", codes: [1002])
    }

    @Test(
        "(g) invalid UTF-8 in a text frame is refused with 1007",
        arguments: [
            "truncated two-byte sequence", "overlong encoding", "UTF-16 surrogate", "beyond U+10FFFF",
            "lone continuation byte",
            "split across fragments",
        ])
    func invalidUTF8(_ name: String) async throws {
        let bad: [UInt8] =
            switch name {
            case "truncated two-byte sequence": [0xC3, 0x28]
            case "overlong encoding": [0xC0, 0xAF]
            case "UTF-16 surrogate": [0xED, 0xA0, 0x80]
            case "beyond U+10FFFF": [0xF4, 0x90, 0x80, 0x80]
            case "lone continuation byte": [0x80]
            default: []
            }
        let open = Array(#"{"type":"ping","x":""#.utf8)
        let bytes: [UInt8]
        if name == "split across fragments" {
            // Each fragment alone is a prefix/suffix of a valid sequence; together they are not UTF-8.
            bytes =
                WireFrame.make(opcode: WireFrame.text, payload: open + [0xE2, 0x82], fin: false)
                + WireFrame.make(opcode: WireFrame.continuation, payload: [0x28] + Array(#""}"#.utf8))
        } else {
            bytes = WireFrame.make(opcode: WireFrame.text, payload: open + bad + Array(#""}"#.utf8))
        }
        try await expectProtocolError(bytes, "text with invalid UTF-8 (\(name))", codes: [1007])
    }

    @Test("(g) a close frame with a 1-byte payload is refused with 1002")
    func closeWithOneBytePayload() async throws {
        try await expectProtocolError(
            WireFrame.make(opcode: WireFrame.close, payload: [0x03]), "1-byte close payload",
            codes: [1002])
    }

    @Test(
        "(g) a close frame with a code a client may not send is refused with 1002",
        arguments: [UInt16(0), 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
    func closeWithInvalidCode(_ code: UInt16) async throws {
        try await expectProtocolError(WireFrame.close(code: code), "close code \(code)", codes: [1002])
    }

    @Test("(g) a close reason that is not UTF-8 is refused with 1007")
    func closeReasonNotUTF8() async throws {
        try await expectProtocolError(
            WireFrame.close(code: 1000, reason: [0x6F, 0x6B, 0xC3, 0x28]), "close reason not UTF-8",
            codes: [1007])
    }

    @Test(
        "(g) control: valid close codes are echoed",
        arguments: [UInt16(1000), 1001, 1003, 1011, 1012, 1014, 3000, 3999, 4000, 4999])
    func validCloseEchoed(_ code: UInt16) async throws {
        let node = try await sharedNode.value
        let reaction = try await reaction(
            to: WireFrame.close(code: code, reason: Array("bye".utf8)), node: node, probe: false)
        #expect(reaction == .closed(code))
        try await node.expectStillServing()
    }

    @Test("(g) control: an empty close frame is answered with a close frame (1000 or no code)")
    func emptyCloseAnswered() async throws {
        let node = try await sharedNode.value
        let reaction = try await reaction(to: WireFrame.close(code: nil), node: node, probe: false)
        #expect(reaction == .closed(1000) || reaction == .closed(nil), "the node \(reaction)")
    }

    @Test("(g) control: a ping between the fragments of a message is answered and the message is handled")
    func pingBetweenFragments() async throws {
        let node = try await sharedNode.value
        let connection = try await node.rawClient("fragments-\(Int.random(in: 0..<1_000_000))")
        try await connection.write(
            WireFrame.text(#"{"type""#, fin: false)
                + WireFrame.make(opcode: WireFrame.ping, payload: Array("mid".utf8))
                + WireFrame.make(opcode: WireFrame.continuation, payload: Array(#":"ping"}"#.utf8)))
        let pong = try await connection.readFrame()
        #expect(pong.opcode == WireFrame.pong && pong.payload == Array("mid".utf8), "got \(pong)")
        let text = try await connection.readFrame()
        #expect(text.opcode == WireFrame.text && text.text == #"{"type":"pong"}"#, "got \(text)")
        await connection.close()
    }

    @Test(
        "(g) control: a 125-byte ping is answered with a pong carrying the same payload; an unsolicited pong is ignored"
    )
    func maximalPingAndUnsolicitedPong() async throws {
        let node = try await sharedNode.value
        let connection = try await node.rawClient("pinger-\(Int.random(in: 0..<1_000_000))")
        let payload = (0..<125).map { UInt8($0) }
        try await connection.write(
            WireFrame.make(opcode: WireFrame.pong, payload: Array("unasked".utf8))
                + WireFrame.make(opcode: WireFrame.ping, payload: payload))
        let pong = try await connection.readFrame()
        #expect(pong.opcode == WireFrame.pong && pong.payload == payload, "got \(pong)")
        await connection.close()
    }

    @Test("(g) control: valid UTF-8 split inside a multi-byte character across fragments is accepted")
    func utf8SplitAcrossFragments() async throws {
        let node = try await sharedNode.value
        let connection = try await node.rawClient("utf8-\(Int.random(in: 0..<1_000_000))")
        let text = Array(#"{"type":"ping","x":"€😀"}"#.utf8)
        let cut = text.firstIndex(of: 0xE2)! + 1  // inside the three bytes of €
        let second = text.firstIndex(of: 0xF0)! + 2  // inside the four bytes of 😀
        try await connection.write(
            WireFrame.make(opcode: WireFrame.text, payload: Array(text[..<cut]), fin: false)
                + WireFrame.make(opcode: WireFrame.continuation, payload: Array(text[cut..<second]), fin: false)
                + WireFrame.make(opcode: WireFrame.continuation, payload: Array(text[second...])))
        let answer = try await connection.readFrame()
        #expect(answer.opcode == WireFrame.text && answer.text == #"{"type":"pong"}"#, "got \(answer)")
        await connection.close()
    }

    @Test("(g) control: frames after the client's close frame are not answered")
    func framesAfterClose() async throws {
        let node = try await sharedNode.value
        let connection = try await node.rawClient("closer-\(Int.random(in: 0..<1_000_000))")
        try await connection.write(
            WireFrame.close(code: 1000) + WireFrame.text(#"{"type":"ping"}"#)
                + WireFrame.make(opcode: WireFrame.ping, payload: Array("late".utf8)))
        var frames: [RawConnection.Frame] = []
        let deadline = ContinuousClock.now + .seconds(5)
        while let frame = try? await connection.readFrame(deadline: deadline) { frames.append(frame) }
        #expect(frames.map(\.opcode) == [WireFrame.close], "got \(frames)")
        #expect(frames.first?.closeCode == 1000)
    }

    @Test(
        "(g) handshake: a Sec-WebSocket-Key that is not the base64 of 16 bytes is refused with 400",
        arguments: ["not base64 at all!", "dG9vIHNob3J0", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"])
    func badWebSocketKey(_ key: String) async throws {
        let node = try await sharedNode.value
        let request = node.upgradeRequest(
            token: try await node.token(for: "keyless"),
            headers: [("Sec-WebSocket-Key", key)])
        let response = try await handshake(request, node: node)
        #expect(response.status == 400, "Sec-WebSocket-Key \(key): \(response.status) \(response.body)")
        try await node.expectStillServing()
    }

    @Test("(g) handshake: an upgrade request without Host is refused with 400")
    func upgradeWithoutHost() async throws {
        let node = try await sharedNode.value
        let request = node.upgradeRequest(token: try await node.token(for: "hostless"), headers: [("Host", nil)])
        let response = try await handshake(request, node: node)
        #expect(response.status == 400, "no Host: \(response.status) \(response.body)")
        try await node.expectStillServing()
    }

    @Test("(g) handshake: 426 for another WebSocket version names the supported one (Sec-WebSocket-Version: 13)")
    func versionRefusalNamesVersion() async throws {
        let node = try await sharedNode.value
        let request = node.upgradeRequest(
            token: try await node.token(for: "old"), headers: [("Sec-WebSocket-Version", "8")])
        let response = try await handshake(request, node: node)
        #expect(response.status == 426)
        #expect(response.header("Sec-WebSocket-Version") == "13", "headers: \(response.headers)")
        try await node.expectStillServing()
    }

    @Test(
        "fuzz: 400 mutated upgrade requests get an HTTP answer, a close, or silence (an incomplete request); the node keeps serving"
    )
    func mutatedUpgradeRequests() async throws {
        let node = try await HostileNode.start()
        var requests: [[UInt8]] = []
        var tokens: [String] = []
        for index in 0..<8 { tokens.append(try await node.token(for: "fuzz-\(index)")) }
        FuzzBudget(seed: 0x4854_5450, iterations: 400).run { index, random in
            let base = node.upgradeRequest(token: tokens.randomElement(using: &random)!)
            requests.append(Mutator.mutate(base, maxMutations: 6, using: &random))
        }
        let mutated = requests
        let outcomes = try await withThrowingTaskGroup(of: [(Int, String)].self) { group in
            for worker in 0..<16 {
                group.addTask {
                    var outcomes: [(Int, String)] = []
                    for index in stride(from: worker, to: mutated.count, by: 16) {
                        let connection = try await RawConnection.connect(port: node.port)
                        _ = try? await connection.write(mutated[index])
                        let outcome: String
                        do {
                            let response = try await connection.readResponse(timeout: .milliseconds(300))
                            outcome =
                                (100...599).contains(response.status)
                                ? "\(response.status)" : "bad status \(response.status)"
                        } catch let error as ReadError {
                            outcome =
                                error.ending == .closed
                                ? "closed" : (error.detail.isEmpty ? "incomplete" : error.detail)
                        } catch {
                            outcome = "\(error)"
                        }
                        await connection.close()
                        outcomes.append((index, outcome))
                    }
                    return outcomes
                }
            }
            var all: [(Int, String)] = []
            for try await outcomes in group { all += outcomes }
            return all
        }
        var summary: [String: Int] = [:]
        for (_, outcome) in outcomes { summary[outcome.count <= 12 ? outcome : "other", default: 0] += 1 }
        for (index, outcome) in outcomes where outcome.hasPrefix("bad status") || outcome.hasPrefix("not an HTTP") {
            Issue.record(
                "case \(index): \(outcome) for \(String(decoding: mutated[index], as: UTF8.self).debugDescription)")
        }
        #expect(outcomes.count == mutated.count, "outcomes: \(summary)")
        #expect(node.server.isRunning, "the node died")
        try await waitUntil(timeout: .seconds(20)) { await node.openConnections() == 0 }
        try await node.expectStillServing()
        await node.stop()
    }

    @Test("(g) control: a well-formed upgrade gets 101 with the RFC 6455 Sec-WebSocket-Accept")
    func wellFormedUpgrade() async throws {
        let node = try await sharedNode.value
        let response = try await handshake(node.upgradeRequest(token: try await node.token(for: "fine")), node: node)
        #expect(response.status == 101)
        #expect(response.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }
}
