import Foundation
import ImCore
import ImRedis
import ImTesting
import Logging
import NIOCore
import Testing

/// A backplane's server as the cluster suite needs it: started on loopback, reachable by a URL
/// the nodes take as `IM_BACKPLANE_URL`, and open to every fault the suite injects (killed and
/// restarted with or without its data, paused, resumed).
///
/// To run the suite on another backplane, conform its server here and add one row to
/// ``Backends/all``; every scenario of `ClusterTests` and `ClusterSoakTests` then runs on it.
protocol ClusterBackend: Sendable {
    /// The row's name in test output.
    static var name: String { get }
    /// Whether the server can be started here; a row whose server is missing is left out,
    /// except in CI (``isContinuousIntegration``), where it runs and fails.
    static var isInstalled: Bool { get }
    /// Starts a server on a free loopback port. With `persistent`, what it holds survives
    /// ``kill()`` and ``restart()``; without, a restart comes back empty.
    static func start(persistent: Bool) async throws -> Self
    /// The backplane URL for nodes (`IM_BACKPLANE_URL`), with a 1 s command timeout.
    var url: String { get }
    /// The same backplane, for an in-process ``ImHelper``.
    func makeBackplane(logger: Logger) throws -> Backplane
    /// Kills the server (SIGKILL) and waits until it is gone.
    func kill() async throws
    /// Starts it again on the same port, with the same data directory; returns once it accepts
    /// connections.
    func restart() async throws
    /// Stops it with SIGSTOP: connections stay open, nothing is answered (a hung server).
    func pause() throws
    /// Lets it run again (SIGCONT).
    func resume() throws
    /// Stops it for good (paused or not).
    func stop() async
    /// How many entries the server still holds for client connections: per-user connection
    /// records, the online index, per-node connection sets, and leases that ran out and were
    /// not reaped. 0 once every client closed and every node took note. Channel memberships
    /// (the back-end's data), used connect tokens (they expire on their own) and the leases of
    /// running nodes are not counted.
    func leftovers() async throws -> Int
}

/// A backend whose server is a ``LocalServer``: the faults are the server's own.
protocol LocalServerBackend: ClusterBackend {
    var server: LocalServer { get }
}

extension LocalServerBackend {
    func kill() async throws { try await server.kill() }
    func restart() async throws { try await server.restart() }
    func pause() throws { try server.pause() }
    func resume() throws { try server.resume() }
    func stop() async { _ = try? await server.stop() }
}

/// One row of the suite: a backplane, erased so rows of different types share a list.
struct BackendRow: Sendable, CustomStringConvertible, CustomTestStringConvertible {
    let name: String
    let isInstalled: @Sendable () -> Bool
    let start: @Sendable (_ persistent: Bool) async throws -> any ClusterBackend

    init<Backend: ClusterBackend>(_ backend: Backend.Type) {
        name = Backend.name
        isInstalled = { Backend.isInstalled }
        start = { try await Backend.start(persistent: $0) }
    }

    var description: String { name }
    var testDescription: String { name }
}

/// The backplanes the cluster suite runs on.
enum Backends {
    /// Every row.
    static let all: [BackendRow] = [
        BackendRow(RedisBackend.self),
        BackendRow(NATSBackend.self),
        BackendRow(PostgresBackend.self),
    ]

    /// The rows to run: those installed here, or every row in CI (where a missing server fails);
    /// `IM_TEST_BACKENDS=postgres,nats` narrows them to those named (while working on one).
    static var available: [BackendRow] {
        let rows = isContinuousIntegration ? all : all.filter { $0.isInstalled() }
        guard let names = ProcessInfo.processInfo.environment["IM_TEST_BACKENDS"] else { return rows }
        let wanted = Set(names.split(separator: ",").map { String($0) })
        return rows.filter { wanted.contains($0.name) }
    }

    /// Whether any row runs.
    static var anyAvailable: Bool { !available.isEmpty }
}

// MARK: Redis

/// redis-server on loopback (``LocalServer/redis(port:tls:persistent:)``), keys under the prefix `it`.
struct RedisBackend: LocalServerBackend {
    static let name = "redis"
    static var isInstalled: Bool { findExecutable("redis-server") != nil }
    static let prefix = "it"

    let server: LocalServer

    static func start(persistent: Bool) async throws -> RedisBackend {
        RedisBackend(server: try await LocalServer.redis(persistent: persistent))
    }

    var url: String { "redis://127.0.0.1:\(server.port)/0?prefix=\(Self.prefix)&timeout=1" }

    func makeBackplane(logger: Logger) throws -> Backplane {
        guard let parsed = URL(string: url) else { throw RedisBackendError.badURL(url) }
        return .redis(try RedisConfiguration(url: parsed), logger: logger)
    }

    /// Counted by one Lua script (the key layout is in `RedisScripts`): fields of `it:conn:{user}`,
    /// members of `it:online` and of `it:nodeconns:{node}`, and leases already expired.
    func leftovers() async throws -> Int {
        let script = """
            local p = ARGV[1]
            local n = redis.call('ZCARD', p .. ':online')
            for _, k in ipairs(redis.call('KEYS', p .. ':conn:*')) do n = n + redis.call('HLEN', k) end
            for _, k in ipairs(redis.call('KEYS', p .. ':nodeconns:*')) do n = n + redis.call('SCARD', k) end
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            return n + redis.call('ZCOUNT', p .. ':leases', '-inf', now)
            """
        let reply = try await command(["EVAL", script, "0", Self.prefix])
        guard case .integer(let count) = reply else { throw RedisBackendError.unexpectedReply("\(reply)") }
        return count
    }

    /// Runs one command on a connection of its own (RESP2 over a raw socket) and returns the reply.
    func command(_ arguments: [String], timeout: Duration = .seconds(5)) async throws -> RESPReply {
        let connection = try await RawConnection.connect(port: server.port)
        defer { Task { await connection.close() } }
        var request = "*\(arguments.count)\r\n"
        for argument in arguments { request += "$\(argument.utf8.count)\r\n\(argument)\r\n" }
        try await connection.write(Array(request.utf8))
        return try await RESPReply.read(from: connection, deadline: .now + timeout)
    }
}

/// Why the Redis row failed outside the system under test.
enum RedisBackendError: Error, CustomStringConvertible {
    case badURL(String)
    case unexpectedReply(String)

    var description: String {
        switch self {
        case .badURL(let url): "not a URL: \(url)"
        case .unexpectedReply(let reply): "unexpected Redis reply: \(reply)"
        }
    }
}

/// A RESP2 reply.
indirect enum RESPReply: Equatable, CustomStringConvertible {
    case status(String)
    case error(String)
    case integer(Int)
    case bulk(String?)
    case array([RESPReply]?)

    var description: String {
        switch self {
        case .status(let text): "+\(text)"
        case .error(let text): "-\(text)"
        case .integer(let value): ":\(value)"
        case .bulk(let text): text.map { "\"\($0)\"" } ?? "nil"
        case .array(let items): items.map { "[\($0.map(\.description).joined(separator: ", "))]" } ?? "nil"
        }
    }

    static func read(from connection: RawConnection, deadline: ContinuousClock.Instant) async throws -> RESPReply {
        let line = try await connection.read(through: Array("\r\n".utf8), deadline: deadline)
        let text = String(decoding: line.dropLast(2), as: UTF8.self)
        guard let kind = text.first else { throw RedisBackendError.unexpectedReply("empty line") }
        let rest = String(text.dropFirst())
        switch kind {
        case "+": return .status(rest)
        case "-": return .error(rest)
        case ":":
            guard let value = Int(rest) else { throw RedisBackendError.unexpectedReply(text) }
            return .integer(value)
        case "$":
            guard let length = Int(rest) else { throw RedisBackendError.unexpectedReply(text) }
            guard length >= 0 else { return .bulk(nil) }
            let bytes = try await connection.read(count: length + 2, deadline: deadline)
            return .bulk(String(decoding: bytes.dropLast(2), as: UTF8.self))
        case "*":
            guard let count = Int(rest) else { throw RedisBackendError.unexpectedReply(text) }
            guard count >= 0 else { return .array(nil) }
            var items: [RESPReply] = []
            for _ in 0..<count { items.append(try await read(from: connection, deadline: deadline)) }
            return .array(items)
        default:
            throw RedisBackendError.unexpectedReply(text)
        }
    }
}
