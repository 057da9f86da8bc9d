import ImCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// One connection to Redis: SwiftNIO owns the socket, hiredis encodes and parses, and
/// commands are pipelined (replies are matched to requests in order). Every command has a
/// timeout; a timed-out connection is closed, since its reply order can no longer be trusted.
final class RedisConnection: Sendable {
    /// The socket.
    let channel: any Channel
    private let timeout: Duration

    private init(channel: any Channel, timeout: Duration) {
        self.channel = channel
        self.timeout = timeout
    }

    /// Connects, authenticates and selects the database. `onPush` receives pub/sub messages
    /// (`["message", channel, payload]`), for a subscriber connection.
    static func connect(_ configuration: RedisConfiguration, group: any EventLoopGroup,
                        onPush: (@Sendable (RedisValue) -> Void)? = nil) async throws -> RedisConnection
    {
        let sslContext = configuration.tls ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        let timeout = configuration.commandTimeout
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.nanoseconds(timeout.nanoseconds))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        if let sslContext {
                            try sync.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: configuration.host))
                        }
                        try sync.addHandler(MessageToByteHandler(RedisCommandEncoder()))
                        try sync.addHandler(ByteToMessageHandler(RedisReplyDecoder()))
                        try sync.addHandler(RedisPipelineHandler(onPush: onPush))
                    }
                }
                .connect(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            throw BackplaneError.unavailable("cannot connect to redis at \(configuration.host):\(configuration.port): \(error)")
        }
        let connection = RedisConnection(channel: channel, timeout: timeout)
        do {
            if let password = configuration.password {
                let auth = configuration.user.map { ["AUTH", $0, password] } ?? ["AUTH", password]
                try await connection.send(RedisCommand(auth)).expectOK("AUTH")
            }
            if configuration.database != 0 {
                try await connection.send(RedisCommand(["SELECT", String(configuration.database)])).expectOK("SELECT")
            }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// Whether the socket is open.
    var isActive: Bool { channel.isActive }

    /// Sends one command and returns its reply (an error reply is returned, not thrown).
    func send(_ command: RedisCommand) async throws -> RedisValue {
        try await send([command])[0]
    }

    /// Sends commands in one write and flush; returns their replies in order.
    func send(_ commands: [RedisCommand]) async throws -> [RedisValue] {
        guard !commands.isEmpty else { return [] }
        let loop = channel.eventLoop
        let promises = commands.map { _ in loop.makePromise(of: RedisValue.self) }
        let requests = zip(commands, promises).map { RedisRequest(command: $0, promise: $1) }
        let channel = self.channel
        let timeout = self.timeout
        loop.execute {
            guard channel.isActive else {
                for request in requests { request.promise.fail(BackplaneError.unavailable("redis connection closed")) }
                return
            }
            for request in requests { channel.write(request, promise: nil) }
            channel.flush()
            let timer = loop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
                let error = BackplaneError.timedOut(operation: commands[0].name)
                for promise in promises { promise.fail(error) }
                channel.close(promise: nil)
            }
            promises.last?.futureResult.whenComplete { _ in timer.cancel() }
        }
        var replies: [RedisValue] = []
        replies.reserveCapacity(promises.count)
        for promise in promises { replies.append(try await promise.futureResult.get()) }
        return replies
    }

    /// Closes the socket.
    func close() { channel.close(promise: nil) }
}

/// A command and the promise of its reply, as written into the pipeline.
struct RedisRequest {
    var command: RedisCommand
    var promise: EventLoopPromise<RedisValue>
}

/// Matches replies to pipelined requests, and hands pub/sub pushes to `onPush`.
final class RedisPipelineHandler: ChannelDuplexHandler {
    typealias InboundIn = RedisValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = RedisCommand

    private var pending = CircularBuffer<EventLoopPromise<RedisValue>>()
    private let onPush: (@Sendable (RedisValue) -> Void)?

    init(onPush: (@Sendable (RedisValue) -> Void)?) {
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        pending.append(request.promise)
        context.write(wrapOutboundOut(request.command), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if let onPush, case .array(let parts) = value, parts.count == 3, parts[0].string == "message" {
            onPush(value)
            return
        }
        guard let promise = pending.popFirst() else {
            context.fireErrorCaught(RedisError.unexpectedReply("reply without a request"))
            return
        }
        promise.succeed(value)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(BackplaneError.unavailable("redis connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(BackplaneError.unavailable("redis connection failed: \(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        while let promise = pending.popFirst() { promise.fail(error) }
    }
}

extension RedisRequest: @unchecked Sendable {}

extension RedisValue {
    /// Throws unless the reply is `+OK`.
    func expectOK(_ command: String) throws {
        switch self {
        case .status("OK"): return
        case .error(let message): throw RedisError.server("\(command): \(message)")
        default: throw RedisError.unexpectedReply("\(command) answered \(self)")
        }
    }

    /// Throws the server's error if the reply is one; returns the reply otherwise.
    func unwrapped(_ command: String) throws -> RedisValue {
        if case .error(let message) = self { throw RedisError.server("\(command): \(message)") }
        return self
    }
}
