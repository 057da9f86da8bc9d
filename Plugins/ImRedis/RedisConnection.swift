import ImBackplane
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
    /// Whether a flush is already queued on the loop: writes of concurrent callers made in one
    /// loop tick leave in one flush (one syscall for the whole pipeline).
    private let flushQueued: NIOLoopBoundBox<Bool>

    private init(channel: any Channel, timeout: Duration) {
        self.channel = channel
        self.timeout = timeout
        self.flushQueued = .makeBoxSendingValue(false, eventLoop: channel.eventLoop)
    }

    /// Connects, authenticates and selects the database. `onPush` receives pub/sub messages
    /// (`["message", channel, payload]`), for a subscriber connection.
    static func connect(
        _ configuration: RedisConfiguration, group: any EventLoopGroup,
        onPush: (@Sendable (RedisValue) -> Void)? = nil
    ) async throws -> RedisConnection {
        let sslContext = try configuration.tls ? makeTLSContext(configuration) : nil
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
                            // SNI takes names only; for an IP address NIOSSL checks the certificate
                            // against the address it connected to.
                            let isAddress = (try? SocketAddress(ipAddress: configuration.host, port: 0)) != nil
                            try sync.addHandler(
                                NIOSSLClientHandler(
                                    context: sslContext,
                                    serverHostname: isAddress ? nil : configuration.host))
                        }
                        try sync.addHandler(ByteToMessageHandler(RedisReplyDecoder()))
                        try sync.addHandler(RedisPipelineHandler(onPush: onPush))
                    }
                }
                .connect(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            throw BackplaneError.unavailable(
                "cannot connect to redis at \(configuration.host):\(configuration.port): \(error)")
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

    private static func makeTLSContext(_ configuration: RedisConfiguration) throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let path = configuration.certificateAuthorities {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path))
            } catch {
                throw BackplaneError.unavailable("cannot read the redis CA file \(path): \(error)")
            }
        }
        return try NIOSSLContext(configuration: tls)
    }

    /// Whether the socket is open.
    var isActive: Bool { channel.isActive }

    /// Sends one command and returns its reply (an error reply is returned, not thrown).
    func send(_ command: RedisCommand) async throws -> RedisValue {
        try await send([command])[0]
    }

    /// Sends commands in one write (flushed with whatever else this loop tick wrote);
    /// returns their replies in order. From the connection's own loop the write is made at once
    /// instead of queued behind the loop's other tasks.
    func send(_ commands: [RedisCommand]) async throws -> [RedisValue] {
        guard !commands.isEmpty else { return [] }
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: [RedisValue].self)
        let request = RedisRequest(commands: commands, promise: promise)
        let channel = self.channel
        let timeout = self.timeout
        let flushQueued = self.flushQueued
        let enqueue: @Sendable () -> Void = {
            guard channel.isActive else {
                promise.fail(BackplaneError.unavailable("redis connection closed"))
                return
            }
            channel.write(request, promise: nil)
            if !flushQueued.value {
                flushQueued.value = true
                loop.execute {
                    flushQueued.value = false
                    channel.flush()
                }
            }
            let timer = loop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
                promise.fail(BackplaneError.timedOut(operation: commands[0].name))
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        // A caller already on the connection's loop (see RedisClient) writes at once.
        if loop.inEventLoop { enqueue() } else { loop.execute(enqueue) }
        return try await promise.futureResult.get()
    }

    /// Closes the socket.
    func close() { channel.close(promise: nil) }
}

/// Commands and the promise of their replies, as written into the pipeline.
struct RedisRequest {
    var commands: [RedisCommand]
    var promise: EventLoopPromise<[RedisValue]>
}

/// Encodes requests (one buffer per request), matches replies to them in order, and hands
/// pub/sub pushes to `onPush`.
final class RedisPipelineHandler: ChannelDuplexHandler {
    typealias InboundIn = RedisValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    /// A request still waiting for its replies.
    private struct Waiting {
        var promise: EventLoopPromise<[RedisValue]>
        var expected: Int
    }

    private var pending = CircularBuffer<Waiting>()
    /// Replies so far to the oldest pending request.
    private var replies: [RedisValue] = []
    private let onPush: (@Sendable (RedisValue) -> Void)?

    init(onPush: (@Sendable (RedisValue) -> Void)?) {
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        var buffer = context.channel.allocator.buffer(capacity: 64 * request.commands.count)
        do {
            for command in request.commands { try command.encode(into: &buffer) }
        } catch {
            request.promise.fail(error)
            promise?.fail(error)
            return
        }
        pending.append(Waiting(promise: request.promise, expected: request.commands.count))
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if let onPush, case .array(let parts) = value, parts.count == 3, parts[0].string == "message" {
            onPush(value)
            return
        }
        guard let head = pending.first else {
            context.fireErrorCaught(BackplaneError.protocolViolation("redis sent a reply without a request"))
            return
        }
        replies.append(value)
        if replies.count == head.expected {
            pending.removeFirst()
            let complete = replies
            replies = []
            head.promise.succeed(complete)
        }
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
        replies = []
        while let waiting = pending.popFirst() { waiting.promise.fail(error) }
    }
}

extension RedisRequest: @unchecked Sendable {}

extension RedisValue {
    /// Throws ``BackplaneError`` unless the reply is `+OK`.
    func expectOK(_ command: String) throws {
        switch self {
        case .status("OK"): return
        case .error(let message): throw BackplaneError.redisRefused(command, message)
        default: throw BackplaneError.protocolViolation("redis answered \(command) with \(self)")
        }
    }

    /// Throws the server's error reply as ``BackplaneError``; returns the reply otherwise.
    func unwrapped(_ command: String) throws -> RedisValue {
        if case .error(let message) = self { throw BackplaneError.redisRefused(command, message) }
        return self
    }
}
