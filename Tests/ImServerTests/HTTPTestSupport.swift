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
    return HTTPResult(status: (response as? HTTPURLResponse)?.statusCode ?? 0, text: String(decoding: data, as: UTF8.self))
}

/// A raw HTTP exchange whose response arrives in chunks (server-sent events).
final class StreamingHTTP: Sendable {
    private let channel: any Channel

    static func open(port: Int, request: String) async throws -> StreamingHTTP {
        try await open(port: port, bytes: Array(request.utf8))
    }

    /// Connects and sends `bytes` in one write.
    static func open(port: Int, bytes: [UInt8]) async throws -> StreamingHTTP {
        let chunks = AsyncQueue<String>()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ChunkCollector(chunks: chunks))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let stream = StreamingHTTP(channel: channel, chunks: chunks)
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
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
