import Foundation
@testable import ImCore
import ImTesting
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Synchronization
import Testing

@testable import ImServer

/// Close codes that may appear in a close frame (RFC 6455 §7.4 and the IANA registry, which
/// added 1012-1014): every code docs/protocol.md documents is one, and an echo of a client's
/// close may be any of them. Never 1004-1006, 1015, 1016-2999 (unassigned) or ≥ 5000.
private func isSendableCloseCode(_ code: UInt16) -> Bool {
    (1000...1003).contains(code) || (1007...1014).contains(code) || (3000...4999).contains(code)
}

/// Client frame bytes (masked), the seeds the mutations start from.
private enum ClientBytes {
    static func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, mask: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        if payload.count < 126 {
            bytes.append(0x80 | UInt8(payload.count))
        } else {
            bytes += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        }
        return bytes + mask + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
    }

    static func random(using random: inout SeededGenerator) -> [UInt8] {
        var stream: [UInt8] = []
        for _ in 0..<Int.random(in: 1...6, using: &random) {
            let mask = (0..<4).map { _ in UInt8.random(in: 0...255, using: &random) }
            switch Int.random(in: 0..<8, using: &random) {
            case 0: stream += frame(0x1, Array(#"{"type":"ping"}"#.utf8), mask: mask)
            case 1: stream += frame(0x1, Array(#"{"type":"ack","id":"0b7e2d4c9a1f3e5d6c8b"}"#.utf8), mask: mask)
            case 2: stream += frame(0x9, Array("hello".utf8), mask: mask)
            case 3: stream += frame(0xA, [], mask: mask)
            case 4: stream += frame(0x8, [0x03, 0xE8] + Array("bye".utf8), mask: mask)
            case 5:
                let text = Array(#"{"type":"ping","pad":"é日本"}"#.utf8)
                let cut = Int.random(in: 0...text.count, using: &random)
                stream += frame(0x1, Array(text[..<cut]), fin: false, mask: mask)
                if Bool.random(using: &random) { stream += frame(0x9, [], mask: mask) }
                stream += frame(0x0, Array(text[cut...]), mask: mask)
            case 6:
                stream += frame(
                    0x1, Array((#"{"type":"ping","pad":""# + String(repeating: "x", count: 200) + #""}"#).utf8),
                    mask: mask)
            default: stream += frame(0x2, [1, 2, 3], mask: mask)
            }
        }
        return stream
    }
}

/// What is wrong with a frame the node wrote.
private struct Problem: Error {
    var text: String
}

/// A server frame parsed from the node's output, checked against RFC 6455 §5.
private struct ServerFrameReader {
    var bytes: [UInt8]
    var index = 0

    /// The next frame, or a description of what is wrong with it; `nil` at the end.
    mutating func next() -> Result<(opcode: UInt8, payload: [UInt8]), Problem>? {
        guard index < bytes.count else { return nil }
        guard bytes.count - index >= 2 else { return .failure(Problem(text: "a truncated header")) }
        let first = bytes[index]
        let second = bytes[index + 1]
        var length = Int(second & 0x7F)
        var header = 2
        if length == 126 {
            guard bytes.count - index >= 4 else { return .failure(Problem(text: "a truncated length")) }
            length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            header = 4
        } else if length == 127 {
            guard bytes.count - index >= 10 else { return .failure(Problem(text: "a truncated length")) }
            length = bytes[(index + 2)..<(index + 10)].reduce(0) { $0 << 8 | Int($1) }
            header = 10
        }
        guard bytes.count - index - header >= length else { return .failure(Problem(text: "a truncated payload")) }
        let payload = Array(bytes[(index + header)..<(index + header + length)])
        index += header + length
        let opcode = first & 0x0F
        if first & 0x70 != 0 { return .failure(Problem(text: "RSV bits set")) }
        if second & 0x80 != 0 { return .failure(Problem(text: "a masked server frame")) }
        if first & 0x80 == 0 { return .failure(Problem(text: "a fragmented server frame")) }
        guard [0x1, 0x8, 0x9, 0xA].contains(opcode) else { return .failure(Problem(text: "opcode \(opcode)")) }
        if opcode >= 0x8 && length > 125 { return .failure(Problem(text: "a control frame of \(length) bytes")) }
        return .success((opcode, payload))
    }
}

/// Violations found across a fuzz run, one entry per kind with its first example.
private final class Findings: @unchecked Sendable {
    private var found: [String: (count: Int, example: String)] = [:]

    func add(_ kind: String, _ example: @autoclosure () -> String) {
        if let entry = found[kind] {
            found[kind] = (entry.count + 1, entry.example)
        } else {
            found[kind] = (1, example())
        }
    }

    func report(cases: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        for (kind, entry) in found.sorted(by: { $0.key < $1.key }) {
            Issue.record(
                "\(kind): \(entry.count) of \(cases) cases; first: \(entry.example)", sourceLocation: sourceLocation)
        }
    }
}

private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

@Suite("Fuzzing the client frame path", .serialized)
struct FrameFuzzTests {
    /// Feeds `chunks` through the node's WebSocket pipeline as `WebSocketUpgradeHandler` builds it
    /// (NIO's frame decoder bounded by `maxFrameSize`, the node's ``WebSocketConnectionHandler`` with its
    /// ``ClientFrameAssembler``) on a testing
    /// channel; returns every byte the node wrote and whether it closed the channel.
    private static func run(_ chunks: [[UInt8]], core: NodeCore, loop: NIOAsyncTestingEventLoop) async throws
        -> (output: [UInt8], closed: Bool)
    {
        let channel = NIOAsyncTestingChannel(loop: loop)
        let limits = core.configuration.limits
        let token = VerifiedToken(client: "fuzz", id: "fuzz", meta: nil, expires: .distantFuture)
        try await loop.submit {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(WebSocketFrameEncoder())
            try sync.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: limits.maxFrameSize)))
            let connection = WebSocketConnectionHandler(core: core)
            try sync.addHandler(connection)
            try connection.open(token)
        }.get()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
        var output: [UInt8] = []
        for chunk in chunks where channel.isActive {
            do {
                try await channel.writeInbound(ByteBuffer(bytes: chunk))
            } catch {
                // The pipeline rethrows what its handlers did not handle; the handler's errorCaught ran.
                break
            }
            while let out = try await channel.readOutbound(as: ByteBuffer.self) { output += out.readableBytesView }
        }
        while let out = try await channel.readOutbound(as: ByteBuffer.self) { output += out.readableBytesView }
        let closed = !channel.isActive
        if !closed { _ = try? await channel.close() }
        return (output, closed)
    }

    @Test(
        "random and mutated client byte streams: never a trap; the node writes only valid frames, any close frame carries a sendable code and precedes the close"
    )
    func mutatedStreams() async throws {
        let backplane = Backplane.memory()
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        let backplaneRunner = ServiceRunner(service: backplane, logger: logger)
        let loop = NIOAsyncTestingEventLoop()
        var configuration = NodeConfiguration(port: 0)
        configuration.limits.maxFrameSize = 1024
        configuration.flushInterval = .zero
        let core = NodeCore(
            configuration: configuration, backplane: backplane,
            tokens: try await ConnectTokens(secret: "fuzz-secret-0123456789abcdef0123456789"),
            group: loop, logger: logger)
        let findings = Findings()
        let cases = try await FuzzBudget(seed: 0xF2A3_0001, iterations: 1500).run { index, random in
            var stream = ClientBytes.random(using: &random)
            switch Int.random(in: 0..<10, using: &random) {
            case 0: break  // valid, only split differently
            case 1:
                stream = (0..<Int.random(in: 1...64, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }
            default: stream = Mutator.mutate(stream, maxMutations: 4, using: &random)
            }
            let (output, closed) = try await Self.run(
                Mutator.chunks(of: stream, using: &random), core: core, loop: loop)
            let example = "case \(index), input \(hex(stream)), output \(hex(output))"
            var reader = ServerFrameReader(bytes: output)
            var sawClose = false
            while let frame = reader.next() {
                switch frame {
                case .failure(let problem):
                    findings.add("the node wrote \(problem.text)", example)
                case .success(let (opcode, payload)):
                    if sawClose { findings.add("the node wrote a frame after its close frame", example) }
                    if opcode == 0x8 {
                        sawClose = true
                        if payload.count == 1 { findings.add("a close frame with a 1-byte payload", example) }
                        if payload.count >= 2 {
                            let code = UInt16(payload[0]) << 8 | UInt16(payload[1])
                            if !isSendableCloseCode(code) {
                                findings.add(
                                    "a close frame with a code a server may not send (RFC 6455 §7.4)",
                                    "code \(code), " + example)
                            }
                            if String(validating: payload[2...], as: UTF8.self) == nil {
                                findings.add("a close reason that is not UTF-8", example)
                            }
                        }
                    } else if opcode == 0x1 {
                        let object = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any]
                        if object?["type"] as? String == nil {
                            findings.add("a text frame that is not a typed JSON object", example)
                        }
                    }
                }
            }
            if closed && !sawClose { findings.add("the channel was closed without a close frame", example) }
        }
        findings.report(cases: cases)
        try await backplaneRunner.stop()
        await loop.shutdownGracefully()
    }

    @Test("random and mutated JSON text for ClientFrame: a frame or a typed error with close code 1007, never a trap")
    func mutatedClientJSON() {
        let seeds = [
            #"{"type":"ping"}"#, #"{"type":"ack","id":"0b7e2d4c9a1f3e5d6c8b"}"#,
            #"{"id":"x","type":"ack","extra":[1,{"a":null}]}"#,
            #"{"type":"ping","type":"ack"}"#, #"{"type":"ack","id":"\u00e9\ud83d\ude00"}"#,
        ].map { Array($0.utf8) }
        FuzzBudget(seed: 0xF2A3_0002, iterations: 20_000).run { index, random in
            var bytes = Mutator.mutate(seeds.randomElement(using: &random)!, maxMutations: 4, using: &random)
            if Int.random(in: 0..<50, using: &random) == 0 {
                let depth = Int.random(in: 100...20_000, using: &random)
                bytes =
                    Array(#"{"type":"ping","x":"#.utf8) + [UInt8](repeating: 0x5B, count: depth)
                    + [UInt8](repeating: 0x5D, count: depth) + [0x7D]
            }
            let result = Result { () throws(ClientFrameError) -> ClientFrame in
                try ClientFrame(parsing: ByteBuffer(bytes: bytes))
            }
            switch result {
            case .success(.ack(let id)): #expect((1...128).contains(id.utf8.count), "case \(index): id \(id)")
            case .success(.ping): break
            case .failure(let error): #expect(!error.description.isEmpty, "case \(index)")
            }
        }
    }
}
