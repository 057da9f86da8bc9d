import ImBackplane
import ImServer
import ImServerAPI
import ImTesting
import Logging
import Testing

extension TestCluster {
    /// Runs `body` with the server API of this cluster's helper listening on the port
    /// `configuration` names (0: a free one), passed to `body`, and stops the API afterwards,
    /// also when `body` throws (so a failing test cleans up).
    ///
    /// The other parameters are `ServerAPI.makeApplication`'s, with its defaults, except `health`:
    /// nil reports this cluster's backplane.
    func withServerAPI<Result>(
        configuration: ServerAPIConfiguration,
        health: (@Sendable () -> BackplaneHealth)? = nil,
        metrics: (@Sendable () -> String)? = nil,
        nodeStats: (@Sendable () async -> NodeSnapshot)? = nil,
        _ body: (_ port: Int) async throws -> Result
    ) async throws -> Result {
        let ports = AsyncQueue<Int>()
        let app = try ServerAPI.makeApplication(
            helper: helper, configuration: configuration, health: health ?? { self.backplane.health },
            metrics: metrics, nodeStats: nodeStats, logger: Logger(label: "api-test"),
            onRunning: { ports.push($0) })
        return try await ServiceRunner.with(app, logger: Logger(label: "api-test")) {
            try await body(try #require(try await ports.next(timeout: .seconds(10)), "the API never reported its port"))
        }
    }
}
