import Foundation
#if canImport(FoundationNetworking)
    #if canImport(FoundationNetworking)
        import FoundationNetworking
    #endif
#endif
import Hummingbird
import ImCore
import ImHelper
@testable import ImRedis
import ImServer
import ImServerAPI
import ImTesting
import Logging
import NIOPosix
import Testing

/// Redis refusing a command is a backplane failure: the server API answers 503, not 500.
@Suite("Server API over a failing Redis", .enabled(if: redisAvailable))
struct RedisAPIFailureTests {
    static let key = "redis-api-key-0123456789"

    @Test(
        "Redis answering an error (out of memory) makes the API answer 503 backplane_unavailable, and 200 again after")
    func redisErrorIs503() async throws {
        let redis = try await LocalServer.redis()
        let configuration = RedisConfiguration(port: redis.port, keyPrefix: "api-failure")
        let backplane = Backplane.redis(configuration, logger: Logger(label: "redis-api"))
        let running = ServiceRunner(service: backplane, logger: Logger(label: "redis-api"))
        let helper = ImHelper(
            backplane: backplane, tokens: try await ConnectTokens(secret: "redis-api-secret-0123456789abcdef01"))
        let ports = AsyncQueue<Int>()
        let app = try ServerAPI.makeApplication(
            helper: helper, configuration: ServerAPIConfiguration(port: 0, apiKey: Self.key),
            health: { backplane.health }, logger: Logger(label: "redis-api"), onRunning: { ports.push($0) })
        let api = ServiceRunner(service: app, logger: Logger(label: "redis-api"))
        let admin = try await RedisConnection.connect(configuration, group: MultiThreadedEventLoopGroup.singleton)
        do {
            let port = try #require(try await ports.next(timeout: .seconds(10)), "the API never reported its port")
            let base = "http://127.0.0.1:\(port)"
            let join = { () async throws -> (Int, String) in
                try await Self.post(base + "/v1/clients/alice/join", #"{"channels":["room"]}"#)
            }
            #expect(try await join().0 == 200)

            // Every write is refused with -OOM from now on.
            try await admin.send(RedisCommand(["CONFIG", "SET", "maxmemory", "1"])).expectOK("CONFIG SET")
            let (status, body) = try await join()
            #expect(status == 503, "\(body)")
            #expect(body.contains("backplane_unavailable"), "\(body)")
            await #expect(throws: BackplaneError.self) { try await backplane.presence.join("bob", channels: ["room"]) }

            try await admin.send(RedisCommand(["CONFIG", "SET", "maxmemory", "0"])).expectOK("CONFIG SET")
            #expect(try await join().0 == 200)
        } catch {
            admin.close()
            try? await api.stop()
            try? await running.stop()
            try? await redis.kill()
            throw error
        }
        admin.close()
        try await api.stop()
        await helper.close()
        try await running.stop()
        try await redis.kill()
    }

    /// POSTs JSON with the API key; returns the status and body.
    private static func post(_ url: String, _ body: String) async throws -> (Int, String) {
        var request = URLRequest(url: try #require(URL(string: url)))
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}
