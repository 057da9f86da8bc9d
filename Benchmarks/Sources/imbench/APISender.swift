import NIOCore

/// Sends through the HTTP server API: one keep-alive connection per lane (spread over the
/// API nodes), reconnected when the server closed it.
final class APISender: PacedSender, @unchecked Sendable {
    private let api: ServerAPI
    private let plan: SendPlan
    private var connections: [HTTPConnection] = []

    /// A sender of `plan` through `api`.
    init(api: ServerAPI, plan: SendPlan) {
        self.api = api
        self.plan = plan
    }

    func open(lanes: Int, on loop: any EventLoop) async throws -> Int {
        var opened: [HTTPConnection] = []
        for index in 0..<max(1, lanes) {
            opened.append(
                try await HTTPConnection.connect(
                    to: api.nodes[index % api.nodes.count], apiKey: api.apiKey,
                    on: loop))
        }
        let ready = opened
        try await loop.submit { self.connections = ready }.get()
        return ready.count
    }

    func send(_ due: [PacedMessage], completion: @escaping @Sendable (PacedMessage, Result<Void, any Error>) -> Void) {
        for message in due {
            send(message.seq, time: message.time, lane: message.lane).whenComplete { completion(message, $0) }
        }
    }

    private func send(_ seq: Int, time: UInt64, lane: Int) -> EventLoopFuture<Void> {
        let connection = connections[lane]
        guard connection.isActive else {
            return HTTPConnection.connect(to: connection.endpoint, apiKey: api.apiKey, on: connection.eventLoop)
                .flatMap { fresh in
                    self.connections[lane] = fresh
                    return self.send(seq, time: time, over: fresh)
                }
        }
        return send(seq, time: time, over: connection)
    }

    private func send(_ seq: Int, time: UInt64, over connection: HTTPConnection) -> EventLoopFuture<Void> {
        var body = connection.channel.allocator.buffer(capacity: 96)
        let target: String
        switch plan {
        case .channel(let channel):
            target = "/v1/channels/\(channel)/messages"
            body.writeStaticString(#"{"from":"bench","data":"#)
        case .pairs(let pairs):
            let pair = String(seq % pairs)
            target = "/v1/messages"
            body.writeStaticString(#"{"from":"s"#)
            body.writeString(pair)
            body.writeStaticString(#"","to":["r"#)
            body.writeString(pair)
            body.writeStaticString(#""],"data":"#)
        }
        SendPlan.writeData(seq: seq, time: time, into: &body)
        body.writeStaticString("}")
        return connection.request(.POST, target, body: body).flatMapThrowing { reply in
            guard reply.isSuccess else { throw BenchError.server("HTTP \(reply.status): \(reply.text.prefix(100))") }
        }
    }

    func close() async {
        for connection in connections { connection.close() }
    }
}
