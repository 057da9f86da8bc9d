import ImCore
import ImRedis
import ImServer
import ImTesting
import Logging
import Testing

/// Health is whether Redis answers, not whether a socket to it is open.
@Suite("Health of a Redis that hangs", .enabled(if: redisAvailable))
struct RedisHealthTests {
    @Test(
        "a stopped (SIGSTOP) redis-server makes the backplane and the node's /health down within 3 s, though every socket stays open; up again once it continues"
    )
    func hungRedisIsDown() async throws {
        let redis = try await LocalServer.redis()
        let configuration = RedisConfiguration(
            port: redis.port, keyPrefix: "hung-\(randomHex(bytes: 4))", commandTimeout: .seconds(1))
        let backplane = Backplane.redis(configuration, logger: Logger(label: "redis-hung"))
        do {
            try await TestCluster.with(backplane: backplane) { cluster in
                do {
                    let node = cluster.nodes[0].node
                    #expect(node.core.healthResponse().status.code == 200)
                    try redis.pause()
                    let stopped = ContinuousClock.now
                    try await waitUntil(timeout: .seconds(5)) { !backplane.health.isUp }
                    #expect(
                        ContinuousClock.now - stopped < .seconds(3), "health went down only after the hang was noticed")
                    #expect(node.core.healthResponse().status.code == 503)
                    #expect(backplane.health.description.contains("PING"), "\(backplane.health)")
                    try redis.resume()
                    try await waitUntil(timeout: .seconds(10)) { node.core.healthResponse().status.code == 200 }
                } catch {
                    // The cluster stops after this, and would wait on a Redis that does not answer.
                    try? redis.resume()
                    throw error
                }
            }
        } catch {
            try? await redis.kill()
            throw error
        }
        try await redis.kill()
    }
}
