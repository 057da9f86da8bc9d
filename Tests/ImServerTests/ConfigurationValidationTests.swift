import Foundation
import ImCore
import ImServer
import ImTesting
import Logging
import Testing

/// Every setting's range is checked at start with the key in the message; nothing traps.
@Suite("Configuration validation")
struct ConfigurationValidationTests {
    private func error(_ configure: (inout NodeConfiguration) -> Void) -> ConfigurationError? {
        var configuration = NodeConfiguration()
        configure(&configuration)
        do {
            try configuration.validate()
            return nil
        } catch {
            return error
        }
    }

    @Test("the defaults are valid")
    func defaults() throws {
        try NodeConfiguration().validate()
        try Limits().validate()
    }

    @Test("each limit out of its range is refused with its key")
    func limitsOutOfRange() {
        let cases: [(String, (inout NodeConfiguration) -> Void)] = [
            ("limits.maxFrameSize", { $0.limits.maxFrameSize = 5_000_000_000 }),
            ("limits.maxFrameSize", { $0.limits.maxFrameSize = 16 * 1024 * 1024 + 1 }),
            ("limits.maxFrameSize", { $0.limits.maxFrameSize = 0 }),
            ("limits.messagesPerSecond", { $0.limits.messagesPerSecond = -1 }),
            ("limits.messageBurst", { $0.limits.messageBurst = Int.max }),
            ("limits.connectionsPerUser", { $0.limits.connectionsPerUser = 0 }),
            ("limits.connectionsPerNode", { $0.limits.connectionsPerNode = Int.max }),
            ("limits.handshakesPerSecond", { $0.limits.handshakesPerSecond = 0 }),
            ("limits.writeBufferHighWater", { $0.limits.writeBufferHighWater = Int.max }),
            ("limits.maxQueuedBytes", { $0.limits.maxQueuedBytes = 0 }),
            ("limits.pendingAcks", { $0.limits.pendingAcks = 10_000_000 }),
            ("limits.slowConsumerTimeout", { $0.limits.slowConsumerTimeout = .seconds(86_401) }),
            ("limits.handshakeTimeout", { $0.limits.handshakeTimeout = .zero }),
            ("heartbeat.interval", { $0.pingInterval = .seconds(Int64.max) }),
            ("heartbeat.idleTimeout", { $0.idleTimeout = .seconds(-1) }),
            ("heartbeat.idleTimeout", { $0.idleTimeout = $0.pingInterval }),
            ("lease.ttl", { $0.leaseTTL = .seconds(100_000) }),
            ("delivery.flushInterval", { $0.flushInterval = .seconds(2) }),
            ("delivery.flushInterval", { $0.flushInterval = .milliseconds(-1) }),
            ("public.listen", { $0.port = 70_000 }),
            ("public.path", { $0.path = "ws" }),
        ]
        for (key, configure) in cases {
            let error = error(configure)
            #expect(error?.key == key, "\(key): \(String(describing: error))")
            #expect(error?.description.contains(key) == true)
        }
        #expect(error { $0.limits.maxFrameSize = Limits.largestFrameSize } == nil)
        #expect(error { $0.flushInterval = .zero } == nil)
        #expect(error { $0.limits.maxFrameSize = 5_000_000_000 }?.expected.contains("16777216") == true)
    }

    @Test(
        "seconds that are NaN, infinite or out of range are refused, not trapped on",
        arguments: [Double.nan, .infinity, -.infinity, 1e300, -1, 86_401, .greatestFiniteMagnitude])
    func secondsSetting(value: Double) {
        #expect(throws: ConfigurationError.self) {
            _ = try Duration.setting("heartbeat.interval", seconds: value, in: 0.001...86_400)
        }
    }

    @Test("seconds in range convert")
    func secondsInRange() throws {
        #expect(try Duration.setting("k", seconds: 0.5, in: 0...1) == .milliseconds(500))
        #expect(try Duration.setting("k", seconds: 86_400, in: 0.001...86_400) == .seconds(86_400))
    }

    @Test("a node given an invalid configuration throws it from run() instead of trapping")
    func nodeRefusesInvalidConfiguration() async throws {
        var configuration = NodeConfiguration(port: 0)
        configuration.flushInterval = .seconds(Int64.max)
        configuration.limits.maxFrameSize = 5_000_000_000
        let node = ImNode(
            configuration: configuration, backplane: .memory(),
            tokens: try await ConnectTokens(secret: "test-secret-of-at-least-32-bytes!!"),
            logger: Logger(label: "t"))
        await #expect(throws: ConfigurationError.self) { try await node.run() }
    }
}
