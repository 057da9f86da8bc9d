import NIOCore

/// Sends through an HTTP server API (ImServer's, or a peer's): one keep-alive connection per
/// lane (spread over the API nodes), reconnected when the server closed it.
final class APISender: PacedSender, @unchecked Sendable {
    private let api: ServerAPI
    private let request: APIRequest
    private var connections: [HTTPConnection] = []

    /// A sender of each message as `request` through `api`.
    init(api: ServerAPI, request: APIRequest) {
        self.api = api
        self.request = request
    }

    /// A sender of `plan` through ImServer's API `api`.
    convenience init(api: ServerAPI, plan: SendPlan) {
        self.init(api: api, request: .imserver(plan))
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
        request.writeBody(seq, time, &body)
        let check = request.check
        return connection.request(.POST, request.target, body: body).flatMapThrowing { try check($0) }
    }

    func close() async {
        for connection in connections { connection.close() }
    }
}
