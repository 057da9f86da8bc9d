import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import ImCore
import ImTesting
import NIOCore
import NIOPosix

/// A response to ``httpRequest(_:_:body:headers:)``.
struct HTTPResult {
    var status: Int
    var text: String
    var json: JSONValue? { try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) }
}

/// One HTTP request with URLSession.
func httpRequest(_ method: String, _ url: String, body: String? = nil, headers: [String: String] = [:])
    async throws -> HTTPResult
{
    guard let target = URL(string: url) else { throw TestClientError.invalidURL(url) }
    var request = URLRequest(url: target)
    request.httpMethod = method
    request.httpBody = body.map { Data($0.utf8) }
    if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    let (data, response) = try await URLSession.shared.data(for: request)
    return HTTPResult(
        status: (response as? HTTPURLResponse)?.statusCode ?? 0, text: String(decoding: data, as: UTF8.self))
}

/// A raw HTTP exchange whose response arrives in chunks (server-sent events).
final class StreamingHTTP: Sendable {
    private let channel: any Channel

    static func open(port: Int, request: String, autoRead: Bool = true, receiveBuffer: Int32? = nil)
        async throws -> StreamingHTTP
    {
        try await open(port: port, bytes: Array(request.utf8), autoRead: autoRead, receiveBuffer: receiveBuffer)
    }

    /// Connects and sends `bytes` in one write. Without `autoRead` nothing is read from the
    /// socket (a reader that stalled) until ``resume()``.
    static func open(port: Int, bytes: [UInt8], autoRead: Bool = true, receiveBuffer: Int32? = nil)
        async throws -> StreamingHTTP
    {
        let chunks = AsyncQueue<String>()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).channelOption(
            .autoRead, value: autoRead)
        if let receiveBuffer {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer))
        }
        let channel =
            try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ChunkCollector(chunks: chunks))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let stream = StreamingHTTP(channel: channel, chunks: chunks)
        // Nothing to write for a silent socket (which the node may close before a write of
        // nothing would reach it, on a loaded machine).
        if !bytes.isEmpty { try await channel.writeAndFlush(ByteBuffer(bytes: bytes)) }
        return stream
    }

    private init(channel: any Channel, chunks: AsyncQueue<String>) {
        self.channel = channel
        self.chunksStorage = chunks
    }

    private let chunksStorage: AsyncQueue<String>

    /// Reads until the text received so far contains `marker`; returns all of it.
    func read(until marker: String, timeout: Duration = .seconds(5)) async throws -> String {
        var text = ""
        while !text.contains(marker) {
            guard let chunk = try await chunksStorage.next(timeout: timeout) else { break }
            text += chunk
        }
        return text
    }

    func close() async { try? await channel.close() }

    /// Stops reading the socket (a reader that stalled).
    func pause() async throws {
        try await channel.setOption(.autoRead, value: false).get()
    }

    /// Reads until `marker` arrives, keeping only the last few KiB (for long streams); returns
    /// how many times `count` appeared on the way (markers split across chunks included).
    func skip(until marker: String, counting count: String, timeout: Duration = .seconds(10)) async throws -> Int {
        var window = ""
        var seen = 0
        while true {
            guard let chunk = try await chunksStorage.next(timeout: timeout) else { throw TestClientError.closed }
            let keep = max(marker.utf8.count, count.utf8.count)
            let text = window + chunk
            seen += occurrences(of: count, in: text) - occurrences(of: count, in: window)
            if occurrences(of: marker, in: text) > 0 { return seen }
            window = String(text.suffix(keep))
        }
    }

    /// How many times `needle` occurs in `text`, without overlaps (byte by byte: Foundation's
    /// `components(separatedBy:)` here took a core of the whole suite's CPU).
    private func occurrences(of needle: String, in text: String) -> Int {
        let pattern = Array(needle.utf8)
        let bytes = Array(text.utf8)
        guard let first = pattern.first, bytes.count >= pattern.count else { return 0 }
        var found = 0
        var index = 0
        while index <= bytes.count - pattern.count {
            if bytes[index] == first, bytes[index..<(index + pattern.count)].elementsEqual(pattern) {
                found += 1
                index += pattern.count
            } else {
                index += 1
            }
        }
        return found
    }

    /// Starts reading the socket (after `open(…, autoRead: false)`).
    func resume() async throws {
        try await channel.setOption(.autoRead, value: true).get()
        channel.read()
    }

    /// The next `count` responses (each with a `Content-Length`), in the order they came.
    func readResponses(_ count: Int, timeout: Duration = .seconds(10)) async throws -> [RawHTTPResponse] {
        var bytes: [UInt8] = []
        var responses: [RawHTTPResponse] = []
        while responses.count < count {
            if let (response, length) = RawHTTPResponse.parse(bytes) {
                responses.append(response)
                bytes.removeFirst(length)
                continue
            }
            guard let chunk = try await chunksStorage.next(timeout: timeout) else { throw TestClientError.closed }
            bytes += Array(chunk.utf8)
        }
        return responses
    }

    /// Everything until the server closes the connection.
    func readToEnd(timeout: Duration = .seconds(10)) async throws -> String {
        var text = ""
        while let chunk = try await chunksStorage.next(timeout: timeout) { text += chunk }
        return text
    }

    /// One request on its own connection (`Connection: close` is added): the status and the
    /// whole response.
    static func exchange(port: Int, _ head: String, body: String = "") async throws -> (status: Int, text: String) {
        let stream = try await open(
            port: port,
            request: head + "Connection: close\r\nContent-Length: \(body.utf8.count)"
                + "\r\n\r\n" + body)
        let text = try await stream.readToEnd()
        await stream.close()
        let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, text)
    }
}

private final class ChunkCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let chunks: AsyncQueue<String>
    init(chunks: AsyncQueue<String>) { self.chunks = chunks }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        chunks.push(String(buffer: unwrapInboundIn(data)))
    }
    func channelInactive(context: ChannelHandlerContext) { chunks.finish() }
}

/// An HTTP/1.1 response read off a raw connection.
struct RawHTTPResponse: Equatable, CustomStringConvertible {
    /// The status code.
    var status: Int
    /// The header lines after the status line, as sent.
    var fields: [String]
    /// The body.
    var body: String

    var description: String { "\(status) \(fields) \(body)" }

    /// The value of the first field `name` (compared without case).
    func field(_ name: String) -> String? {
        fields.lazy.compactMap { line -> String? in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == name.lowercased() else { return nil }
            return parts[1].trimmingCharacters(in: .whitespaces)
        }.first
    }

    /// The first response in `bytes` and how many bytes it took, or `nil` while incomplete.
    static func parse(_ bytes: [UInt8]) -> (RawHTTPResponse, Int)? {
        let separator = Array("\r\n\r\n".utf8)
        guard bytes.count >= separator.count,
            let end = (0...(bytes.count - separator.count)).first(where: {
                bytes[$0..<($0 + separator.count)].elementsEqual(separator)
            })
        else { return nil }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { return nil }
        var response = RawHTTPResponse(status: status, fields: Array(lines.dropFirst()), body: "")
        let length = response.field("Content-Length").flatMap { Int($0) } ?? 0
        let bodyStart = end + separator.count
        guard bytes.count >= bodyStart + length else { return nil }
        response.body = String(decoding: bytes[bodyStart..<(bodyStart + length)], as: UTF8.self)
        return (response, bodyStart + length)
    }
}
