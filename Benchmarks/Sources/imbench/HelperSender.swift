import ImCore
import ImHelper
import ImNATS
import ImPostgres
import ImRedis
import Logging
import NIOCore

/// Sends in-process through ``ImHelper`` on a shared backplane (helper → backplane → node),
/// the way a Swift back-end does: `lanes` messages in flight at once.
final class HelperSender: PacedSender {
    private let helper: ImHelper
    private let plan: SendPlan

    /// A helper on the backplane at `url` (not `memory://`: the nodes are other processes).
    init(backplane url: String, plan: SendPlan) async throws {
        guard !url.hasPrefix("memory:") else {
            throw BenchError.invalidArgument("--sender helper needs the nodes' shared backplane URL (e.g. redis://…)")
        }
        var factory = BackplaneFactory()
        factory.registerRedis()
        factory.registerNATS()
        factory.registerPostgres()
        var logger = Logger(label: "imbench.helper")
        logger.logLevel = .warning
        let backplane = try await factory.makeBackplane(url: url, logger: logger)
        // The backplane runs for the rest of the process (a pool, a listener, a nats.c
        // connection), as a back-end runs it in its service group.
        Task { try? await backplane.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while !backplane.health.isUp {
            guard ContinuousClock.now < deadline else {
                throw BenchError.server("the backplane at \(url) is not up after 10 s: \(backplane.health)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        // The benchmark mints its tokens through the API; this helper only sends.
        let tokens = try await ConnectTokens(secret: randomTokenSecret())
        self.helper = ImHelper(backplane: backplane, tokens: tokens, logger: logger)
        self.plan = plan
    }

    func open(lanes: Int, on loop: any EventLoop) async throws -> Int {
        max(1, lanes)
    }

    /// Sends pairs' messages with one batch call (``ImHelper/send(_:)``) per tick, channel
    /// messages one call each.
    func send(_ due: [PacedMessage], completion: @escaping @Sendable (PacedMessage, Result<Void, any Error>) -> Void) {
        let plan = plan
        let helper = helper
        switch plan {
        case .channel(let channel):
            for message in due {
                Task {
                    do {
                        try await helper.send(try Self.payload(message), from: "bench", toChannel: channel)
                        completion(message, .success(()))
                    } catch {
                        completion(message, .failure(error))
                    }
                }
            }
        case .pairs(let pairs):
            Task {
                do {
                    let outgoing = try due.map { message in
                        let pair = String(message.seq % pairs)
                        return OutgoingMessage(
                            try Self.payload(message), from: ClientID(rawValue: "s" + pair),
                            to: [ClientID(rawValue: "r" + pair)])
                    }
                    let results = try await helper.send(outgoing)
                    for (message, result) in zip(due, results) {
                        completion(
                            message,
                            result.offline.isEmpty
                                ? .success(()) : .failure(BenchError.server("receiver \(result.offline[0]) offline")))
                    }
                } catch {
                    for message in due { completion(message, .failure(error)) }
                }
            }
        }
    }

    /// The message body `{"seq":n,"t":ns}`, validated as a back-end's would be.
    private static func payload(_ message: PacedMessage) throws -> JSONPayload {
        var body = ByteBuffer()
        body.reserveCapacity(48)
        SendPlan.writeData(seq: message.seq, time: message.time, into: &body)
        return try JSONPayload(validating: body)
    }

    func close() async {}
}
