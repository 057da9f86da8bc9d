import ImCore
import ImTesting
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import ImRedis

/// A command sent from one of the group's event loops goes out on a connection of that loop, so
/// its reply resumes the caller without waking another thread.
@Suite("Redis pool: a connection on the caller's loop", .enabled(if: redisAvailable))
struct RedisLoopAffinityTests {
    @Test("from each loop, every command uses a connection of that loop; from elsewhere, any")
    func connectionOnTheCallersLoop() async throws {
        let redis = try await LocalServer.redis()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let client = RedisClient(
            configuration: RedisConfiguration(port: redis.port, poolSize: 4), group: group,
            logger: Logger(label: "redis-affinity"))
        do {
            for loop in group.makeIterator() {
                let matches = try await Task(executorPreference: EventLoopTaskExecutor(loop)) {
                    var matches: [Bool] = []
                    for _ in 0..<6 {
                        let connection = try await client.connection()
                        matches.append(connection.channel.eventLoop === loop)
                        _ = try await client.send(RedisCommand(["PING"]))
                        matches.append(loop.inEventLoop)
                    }
                    return matches
                }.value
                #expect(matches == Array(repeating: true, count: 12))
            }
            // Off the loops the pool goes round all its connections, on both loops.
            var loops = Set<ObjectIdentifier>()
            for _ in 0..<8 { loops.insert(ObjectIdentifier(try await client.connection().channel.eventLoop)) }
            #expect(loops.count == 2)
        } catch {
            await client.close()
            try? await group.shutdownGracefully()
            try? await redis.kill()
            throw error
        }
        await client.close()
        try await group.shutdownGracefully()
        try await redis.kill()
    }
}
