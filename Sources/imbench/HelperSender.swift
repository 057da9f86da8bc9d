import ImCore
import ImHelper
import ImRedis
import Logging
import NIOCore

/// Sends in-process through ``ImHelper`` on a shared backplane (helper → backplane → node),
/// the way a Swift back-end does: `lanes` sends in flight at once.
final class HelperSender: PacedSender, @unchecked Sendable {
    private let helper: ImHelper
    private let plan: SendPlan
    private var loop: (any EventLoop)?

    /// A helper on the backplane at `url` (not `memory://`: the nodes are other processes).
    init(backplane url: String, plan: SendPlan) async throws {
        guard !url.hasPrefix("memory:") else {
            throw BenchError.invalidArgument("--sender helper needs the nodes' shared backplane URL (e.g. redis://…)")
        }
        var factory = BackplaneFactory()
        factory.registerRedis()
        var logger = Logger(label: "imbench.helper")
        logger.logLevel = .warning
        let backplane = try await factory.makeBackplane(url: url, logger: logger)
        // The benchmark mints its tokens through the API; this helper only sends.
        let tokens = try await ConnectTokens(secret: randomHex(bytes: 32))
        self.helper = ImHelper(backplane: backplane, tokens: tokens, logger: logger)
        self.plan = plan
    }

    func open(lanes: Int, on loop: any EventLoop) async throws -> Int {
        self.loop = loop
        return max(1, lanes)
    }

    func send(_ seq: Int, time: UInt64, lane: Int) -> EventLoopFuture<Void> {
        guard let loop else { preconditionFailure("open(lanes:on:) first") }
        var body = ByteBuffer()
        body.reserveCapacity(48)
        SendPlan.writeData(seq: seq, time: time, into: &body)
        let data = body
        let plan = plan
        let helper = helper
        let promise = loop.makePromise(of: Void.self)
        promise.completeWithTask {
            let payload = try JSONPayload(validating: data)
            switch plan {
            case .channel(let channel):
                try await helper.send(payload, from: "bench", toChannel: channel)
            case .pairs(let pairs):
                let pair = String(seq % pairs)
                let result = try await helper.send(payload, from: ClientID(rawValue: "s" + pair),
                                                   to: [ClientID(rawValue: "r" + pair)])
                if !result.offline.isEmpty { throw BenchError.server("receiver r\(pair) offline") }
            }
        }
        return promise.futureResult
    }

    func close() async {}
}
