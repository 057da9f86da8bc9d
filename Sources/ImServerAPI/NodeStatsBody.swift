import Foundation
import Hummingbird
import ImCore
import ImServer

/// The body of `GET /v1/node/stats`: one node's live figures (``NodeSnapshot``), as
/// docs/openapi.yaml describes them. Durations are in seconds; counts since the node started.
struct NodeStatsBody: Encodable, ResponseEncodable {
    struct Backplane: Encodable {
        var status: String
        var detail: String
        var linked: Bool
    }

    struct Connections: Encodable {
        var open: Int
        var accepted: Int
        var refused: [String: Int]
        var closes: [String: Int]
    }

    struct Traffic: Encodable {
        var framesIn: Int
        var framesOut: Int
        var deliveries: Int
        var bytesOut: Int
        var flushes: Int
    }

    struct Latency: Encodable {
        var windowSeconds: Double
        var samples: Int
        var p50Seconds: Double?
        var p99Seconds: Double?

        private enum CodingKeys: String, CodingKey { case windowSeconds, samples, p50Seconds, p99Seconds }

        /// Writes `null` for a quantile without samples (rather than leaving it out).
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(windowSeconds, forKey: .windowSeconds)
            try container.encode(samples, forKey: .samples)
            try container.encode(p50Seconds, forKey: .p50Seconds)
            try container.encode(p99Seconds, forKey: .p99Seconds)
        }
    }

    var node: String
    var uptimeSeconds: Double
    var backplane: Backplane
    var connections: Connections
    var traffic: Traffic
    var latency: Latency

    init(_ snapshot: NodeSnapshot) {
        node = snapshot.node.rawValue
        uptimeSeconds = snapshot.uptime.seconds
        backplane = Backplane(
            status: snapshot.backplane.isUp ? "up" : "down", detail: snapshot.backplane.description,
            linked: snapshot.isLinked)
        connections = Connections(
            open: snapshot.openConnections, accepted: snapshot.handshakesAccepted,
            refused: Dictionary(uniqueKeysWithValues: snapshot.handshakesRefused.map { (String($0.key), $0.value) }),
            closes: Dictionary(uniqueKeysWithValues: snapshot.closes.map { (String($0.key.rawValue), $0.value) }))
        let totals = snapshot.traffic
        traffic = Traffic(
            framesIn: totals.framesIn, framesOut: totals.framesOut, deliveries: totals.deliveries,
            bytesOut: totals.bytesOut, flushes: totals.flushes)
        latency = Latency(
            windowSeconds: snapshot.latency.window.seconds, samples: snapshot.latency.samples,
            p50Seconds: snapshot.latency.p50?.seconds, p99Seconds: snapshot.latency.p99?.seconds)
    }
}
