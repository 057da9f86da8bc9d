import ImCore
import ImRedis
import ImServer
import ImTesting
import Logging
import Testing

/// A node started before its Redis: it waits, refusing handshakes, and serves once Redis is up.
@Suite("A node whose Redis starts after it", .enabled(if: redisAvailable))
struct RedisStartupTests {
    @Test(
        "health 503 and handshakes refused while nothing listens; once redis-server starts on that port: health 200, a client connects and receives"
    )
    func redisStartsAfterTheNode() async throws {
        let port = try await freePort()
        let configuration = RedisConfiguration(port: port, keyPrefix: "startup-\(randomHex(bytes: 4))")
        let backplane = Backplane.redis(configuration, logger: Logger(label: "redis-startup"))
        var redis: LocalServer?
        do {
            try await TestCluster.with(backplane: backplane, waitUntilLinked: false) { cluster in
                let node = cluster.nodes[0].node
                #expect(node.core.healthResponse().status.code == 503)
                #expect(!backplane.health.isUp)
                do {
                    let early = try await cluster.connect("early")
                    await early.close()
                    Issue.record("a handshake was admitted while Redis was not there")
                } catch TestClientError.refused(let status, _) {
                    #expect(status == 503)
                }

                redis = try await LocalServer.redis(port: port)
                try await waitUntil(timeout: .seconds(20)) { node.core.healthResponse().status.code == 200 }
                var client: TestClient?
                try await waitUntil(timeout: .seconds(9)) {
                    client = try? await cluster.connect("late")
                    return client != nil
                }
                let late = try #require(client)
                let sent = try await cluster.helper.send(.text("redis is here"), from: "x", to: ["late"])
                #expect(sent.offline.isEmpty, "late is listed online when the message is sent")
                #expect(try await late.next(type: "message", timeout: .seconds(11))["id"]?.string == sent.id)
                await late.close()
            }
        } catch {
            try? await redis?.kill()
            throw error
        }
        try await redis?.kill()
    }
}
