import Foundation
import ImTesting
import NIOCore
import NIOPosix
import Synchronization

/// A raw TCP connection to a node, for hostile-client tests: writes whatever bytes it is given
/// (malformed frames, unmasked frames, floods) and reads the raw answer (HTTP heads, frames,
/// the close frame, the end of the stream). Every read waits with a timeout.
final class RawConnection: Sendable {
    /// What the other side did to end a read.
    enum Ending: Equatable, CustomStringConvertible {
        /// The stream ended (the node closed the socket).
        case closed
        /// Nothing arrived within the timeout.
        case timedOut

        var description: String { self == .closed ? "connection closed" : "timed out" }
    }

    /// A WebSocket frame as it came off the wire (server frames are not masked).
    struct Frame: Equatable, CustomStringConvertible {
        var fin: Bool
        var rsv: UInt8
        var opcode: UInt8
        var masked: Bool
        var payload: [UInt8]

        /// The code of a close frame, if it has one.
        var closeCode: UInt16? {
            guard opcode == 0x8, payload.count >= 2 else { return nil }
            return UInt16(payload[0]) << 8 | UInt16(payload[1])
        }

        var text: String { String(decoding: payload, as: UTF8.self) }

        var description: String {
            if opcode == 0x8 { return "close(\(closeCode.map(String.init) ?? "none") \(text.dropFirst(2)))" }
            return "frame(opcode \(opcode), fin \(fin), \(payload.count) bytes: \(text.prefix(80)))"
        }
    }

    /// An HTTP response head and body.
    struct Response {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: String

        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    let channel: any Channel
    private let chunks: AsyncQueue<ByteBuffer>
    /// Bytes received but not consumed yet (only the single reader touches it).
    private let pending = Mutex<[UInt8]>([])
    private let ended = Mutex(false)

    private init(channel: any Channel, chunks: AsyncQueue<ByteBuffer>) {
        self.channel = channel
        self.chunks = chunks
    }

    /// Connects to `127.0.0.1:port`. With `autoRead` off, nothing is read from the socket
    /// until ``setReading(_:)`` turns it on (the client never reads: the node's writes pile up).
    static func connect(
        port: Int, host: String = "127.0.0.1", autoRead: Bool = true,
        receiveBufferSize: Int? = nil
    ) async throws -> RawConnection {
        let chunks = AsyncQueue<ByteBuffer>()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: autoRead)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteCollector(chunks: chunks))
                }
            }
        if let receiveBufferSize {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferSize))
        }
        let channel = try await bootstrap.connect(host: host, port: port).get()
        return RawConnection(channel: channel, chunks: chunks)
    }

    // MARK: Writing

    /// Writes `bytes` and waits until they were handed to the kernel.
    func write(_ bytes: [UInt8]) async throws {
        try await send(bytes).get()
    }

    private func send(_ bytes: [UInt8]) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: promise)
        return promise.futureResult
    }

    /// Writes `bytes`; returns `false` when they could not all be handed to the kernel within
    /// `timeout` (the node stopped reading), `true` when they were; throws when the connection failed.
    func write(_ bytes: [UInt8], timeout: Duration) async throws -> Bool {
        let future = send(bytes)
        return try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await future.get()
                return true
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            let first = try await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    /// Starts or stops reading from the socket.
    func setReading(_ reading: Bool) async throws {
        try await channel.setOption(.autoRead, value: reading).get()
        if reading { channel.read() }
    }

    /// Closes the socket.
    func close() async {
        try? await channel.close()
    }

    var isActive: Bool { channel.isActive }

    // MARK: Reading

    /// Takes exactly `count` bytes; throws ``Ending`` when the stream ends or time runs out first.
    func read(count: Int, deadline: ContinuousClock.Instant) async throws(ReadError) -> [UInt8] {
        while true {
            let taken = pending.withLock { bytes -> [UInt8]? in
                guard bytes.count >= count else { return nil }
                let taken = Array(bytes.prefix(count))
                bytes.removeFirst(count)
                return taken
            }
            if let taken { return taken }
            try await fill(deadline: deadline)
        }
    }

    /// Takes bytes up to and including `terminator`.
    func read(through terminator: [UInt8], deadline: ContinuousClock.Instant, limit: Int = 1 << 20)
        async throws(ReadError) -> [UInt8]
    {
        while true {
            let taken = pending.withLock { bytes -> [UInt8]? in
                guard let range = bytes.firstRange(of: terminator) else { return nil }
                let taken = Array(bytes[..<range.upperBound])
                bytes.removeFirst(range.upperBound)
                return taken
            }
            if let taken { return taken }
            if pending.withLock({ $0.count }) > limit {
                throw ReadError(ending: .timedOut, detail: "no terminator in \(limit) bytes")
            }
            try await fill(deadline: deadline)
        }
    }

    private func fill(deadline: ContinuousClock.Instant) async throws(ReadError) {
        if ended.withLock({ $0 }) { throw ReadError(ending: .closed) }
        let remaining = deadline - .now
        guard remaining > .zero else { throw ReadError(ending: .timedOut) }
        let chunk: ByteBuffer?
        do {
            chunk = try await chunks.next(timeout: remaining)
        } catch {
            throw ReadError(ending: .timedOut)
        }
        guard let chunk else {
            ended.withLock { $0 = true }
            throw ReadError(ending: .closed)
        }
        pending.withLock { $0.append(contentsOf: chunk.readableBytesView) }
    }

    /// Reads an HTTP response (head, and a body of `content-length` bytes).
    func readResponse(timeout: Duration = .seconds(5)) async throws(ReadError) -> Response {
        let deadline = ContinuousClock.now + timeout
        let head = try await read(through: Array("\r\n\r\n".utf8), deadline: deadline)
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = lines.first?.split(separator: " ") ?? []
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw ReadError(ending: .timedOut, detail: "not an HTTP response: \(lines.first ?? "")")
        }
        var headers: [(String, String)] = []
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append(
                (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var response = Response(status: status, headers: headers, body: "")
        if let length = response.header("content-length").flatMap(Int.init), length > 0 {
            response.body = String(decoding: try await read(count: length, deadline: deadline), as: UTF8.self)
        }
        return response
    }

    /// Reads one WebSocket frame.
    func readFrame(timeout: Duration = .seconds(5)) async throws(ReadError) -> Frame {
        try await readFrame(deadline: .now + timeout)
    }

    func readFrame(deadline: ContinuousClock.Instant) async throws(ReadError) -> Frame {
        let header = try await read(count: 2, deadline: deadline)
        var length = UInt64(header[1] & 0x7F)
        if length == 126 {
            length = try await read(count: 2, deadline: deadline).reduce(0) { $0 << 8 | UInt64($1) }
        } else if length == 127 {
            length = try await read(count: 8, deadline: deadline).reduce(0) { $0 << 8 | UInt64($1) }
        }
        let masked = header[1] & 0x80 != 0
        let mask = masked ? try await read(count: 4, deadline: deadline) : []
        guard length < 1 << 26 else { throw ReadError(ending: .timedOut, detail: "frame of \(length) bytes") }
        var payload = try await read(count: Int(length), deadline: deadline)
        if masked { for index in payload.indices { payload[index] ^= mask[index % 4] } }
        return Frame(
            fin: header[0] & 0x80 != 0, rsv: (header[0] >> 4) & 0x7, opcode: header[0] & 0x0F,
            masked: masked, payload: payload)
    }

    /// How the node ended the connection: the close frame it sent first (other frames before
    /// it are skipped), or the end of the stream without one, or a timeout.
    enum CloseOutcome: Equatable, CustomStringConvertible {
        case closeFrame(Frame)
        case endedWithoutCloseFrame
        case timedOut

        var code: UInt16? {
            if case .closeFrame(let frame) = self { return frame.closeCode }
            return nil
        }

        var description: String {
            switch self {
            case .closeFrame(let frame): "\(frame)"
            case .endedWithoutCloseFrame: "TCP close without a close frame"
            case .timedOut: "still open (no close frame)"
            }
        }
    }

    /// Reads frames until the node's close frame, the end of the stream, or `timeout`.
    func closeOutcome(timeout: Duration = .seconds(5)) async -> CloseOutcome {
        let deadline = ContinuousClock.now + timeout
        while true {
            do {
                let frame = try await readFrame(deadline: deadline)
                if frame.opcode == 0x8 { return .closeFrame(frame) }
            } catch {
                return error.ending == .closed ? .endedWithoutCloseFrame : .timedOut
            }
        }
    }

    /// Waits until the node closes the socket (anything it sends meanwhile is dropped);
    /// `false` after `timeout`.
    func waitUntilClosed(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            do {
                try await fill(deadline: deadline)
                pending.withLock { $0.removeAll(keepingCapacity: true) }
            } catch {
                return error.ending == .closed
            }
        }
    }
}

/// Why a read ended early.
struct ReadError: Error, CustomStringConvertible {
    var ending: RawConnection.Ending
    var detail = ""
    var description: String { detail.isEmpty ? ending.description : "\(ending): \(detail)" }
}

/// Pushes every chunk read into a queue; finishes it when the socket closes.
private final class ByteCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let chunks: AsyncQueue<ByteBuffer>

    init(chunks: AsyncQueue<ByteBuffer>) { self.chunks = chunks }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        chunks.push(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        chunks.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

// MARK: Frames

/// Builders of client frame bytes (RFC 6455 §5.2), masked unless asked otherwise.
enum WireFrame {
    static let text: UInt8 = 0x1
    static let binary: UInt8 = 0x2
    static let continuation: UInt8 = 0x0
    static let close: UInt8 = 0x8
    static let ping: UInt8 = 0x9
    static let pong: UInt8 = 0xA

    /// One frame. `length` overrides the declared payload length (for lying headers).
    static func make(
        opcode: UInt8, payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, masked: Bool = true,
        mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
    ) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | (rsv & 0x7) << 4 | (opcode & 0x0F)]
        let maskBit: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            bytes.append(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            bytes.append(maskBit | 126)
            bytes.append(UInt8(payload.count >> 8))
            bytes.append(UInt8(payload.count & 0xFF))
        } else {
            bytes.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) {
                bytes.append(UInt8((UInt64(payload.count) >> UInt64(shift)) & 0xFF))
            }
        }
        if masked {
            bytes += mask
            bytes += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        } else {
            bytes += payload
        }
        return bytes
    }

    static func text(_ string: String, fin: Bool = true, masked: Bool = true) -> [UInt8] {
        make(opcode: text, payload: Array(string.utf8), fin: fin, masked: masked)
    }

    /// A close frame with `code` (if any) and raw reason bytes.
    static func close(code: UInt16?, reason: [UInt8] = []) -> [UInt8] {
        var payload: [UInt8] = []
        if let code { payload = [UInt8(code >> 8), UInt8(code & 0xFF)] }
        return make(opcode: close, payload: payload + reason)
    }
}
