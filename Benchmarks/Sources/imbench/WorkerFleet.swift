import Foundation

/// A fleet split over worker processes (`imbench worker`), for more sockets than one
/// process may open. Each worker holds a contiguous slice of the members and answers the
/// parent's commands; the parent merges their reports (histograms exactly).
final class WorkerFleet: Fleet {
    private let workers: [WorkerProcess]

    /// Starts `count` workers for the members of `spec`.
    init(spec: FleetSpec, workers count: Int) throws {
        let executable = ProcessResources.executablePath
        var workers: [WorkerProcess] = []
        var offset = 0
        for index in 0..<count {
            let size = spec.count / count + (index < spec.count % count ? 1 : 0)
            workers.append(
                try WorkerProcess(
                    executable: executable, spec: spec.slice(from: offset, count: size),
                    index: index))
            offset += size
        }
        self.workers = workers
    }

    private func all<T: Decodable & Sendable>(_ keyword: String, _ argument: String? = nil, as type: T.Type)
        async throws -> [T]
    {
        try await withThrowingTaskGroup(of: T.self) { group in
            for worker in workers {
                group.addTask { try await worker.request(keyword, argument, as: T.self) }
            }
            var results: [T] = []
            for try await result in group { results.append(result) }
            return results
        }
    }

    func mint() async throws -> MintReport {
        try await all("MINT", as: MintReport.self).reduce(into: MintReport()) { $0.merge($1) }
    }

    func connect() async throws -> ConnectReport {
        try await all("CONNECT", as: ConnectReport.self).reduce(into: ConnectReport()) { $0.merge($1) }
    }

    func snapshot() async throws -> Snapshot {
        try await all("SNAPSHOT", as: Snapshot.self).reduce(into: Snapshot()) { $0.merge($1) }
    }

    func finish(sent: Int, failed: [Int]) async throws -> DeliveryReport {
        let argument = String(
            decoding: try JSONEncoder().encode(FinishRequest(sent: sent, failed: failed)), as: UTF8.self)
        return DeliveryReport.merged(try await all("FINISH", argument, as: DeliveryReport.self))
    }

    func close() async {
        _ = try? await all("CLOSE", as: Empty.self)
        for worker in workers { await worker.waitForExit(timeout: 10) }
    }
}

/// The argument of `FINISH`.
struct FinishRequest: Codable, Sendable {
    var sent: Int
    var failed: [Int]
}

/// An empty JSON object.
struct Empty: Codable, Sendable {}
