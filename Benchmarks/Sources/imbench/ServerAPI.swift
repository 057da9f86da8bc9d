import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// The server API calls the benchmark makes, on connections it owns.
///
/// Each caller (a task of a concurrent batch) holds its own ``HTTPConnection`` per API node,
/// so requests never queue behind each other inside one connection.
struct ServerAPI: Sendable {
    /// The API base URLs, one per node (`http://127.0.0.1:6002`).
    let nodes: [Endpoint]
    /// The API key, sent as `Authorization: Bearer`.
    let apiKey: String?

    private struct ConnectURL: Decodable {
        var url: String
    }

    private struct ConnectURLs: Decodable {
        struct Item: Decodable {
            var url: String?
        }

        var urls: [Item]
    }

    /// A reusable set of connections, one per node, for one task.
    final class Session {
        let api: ServerAPI
        let loop: any EventLoop
        private var connections: [Int: HTTPConnection] = [:]

        init(api: ServerAPI, loop: any EventLoop) {
            self.api = api
            self.loop = loop
        }

        /// Sends a request to node `node` (modulo the node count), reconnecting once if the
        /// kept-alive connection turned out to be closed.
        func request(node: Int, _ method: HTTPMethod, _ path: String, json: String? = nil) async throws -> HTTPReply {
            let index = node % api.nodes.count
            for attempt in 0..<2 {
                let connection: HTTPConnection
                if let existing = connections[index], existing.isActive {
                    connection = existing
                } else {
                    connection = try await HTTPConnection.connect(to: api.nodes[index], apiKey: api.apiKey, on: loop)
                    connections[index] = connection
                }
                do {
                    return try await connection.request(method, path, json: json)
                } catch HTTPConnectionError.closed where attempt == 0 {
                    connections[index] = nil
                }
            }
            throw HTTPConnectionError.closed
        }

        /// `POST /v1/connect-url` for `client` on node `node`: the single-use WebSocket URL.
        func connectURL(for client: String, node: Int) async throws -> String {
            let reply = try await request(
                node: node, .POST, "/v1/connect-url", json: #"{"client":\#(jsonString(client))}"#)
            guard reply.isSuccess else {
                throw BenchError.server("connect-url: HTTP \(reply.status) \(reply.text.prefix(120))")
            }
            return try JSONDecoder().decode(ConnectURL.self, from: Data(reply.body.readableBytesView)).url
        }

        /// `POST /v1/connect-urls` for `clients` on node `node`: their URLs, in order; throws if
        /// any was refused.
        func connectURLs(for clients: [String], node: Int) async throws -> [String] {
            let items = clients.map { #"{"client":\#(jsonString($0))}"# }.joined(separator: ",")
            let reply = try await request(node: node, .POST, "/v1/connect-urls", json: #"{"clients":[\#(items)]}"#)
            guard reply.isSuccess else {
                throw BenchError.server("connect-urls: HTTP \(reply.status) \(reply.text.prefix(120))")
            }
            let urls = try JSONDecoder().decode(ConnectURLs.self, from: Data(reply.body.readableBytesView)).urls
            let minted = urls.compactMap(\.url)
            guard minted.count == clients.count else {
                throw BenchError.server(
                    "connect-urls: \(clients.count - minted.count) refused: \(reply.text.prefix(200))")
            }
            return minted
        }

        /// `POST /v1/clients/{client}/join` with one channel.
        func join(_ client: String, channel: String, node: Int) async throws {
            try await join(client, channels: [channel], node: node)
        }

        /// `POST /v1/clients/{client}/join` with `channels`.
        func join(_ client: String, channels: [String], node: Int) async throws {
            let list = channels.map(jsonString).joined(separator: ",")
            let reply = try await request(
                node: node, .POST, "/v1/clients/\(client)/join", json: #"{"channels":[\#(list)]}"#)
            guard reply.isSuccess else {
                throw BenchError.server("join: HTTP \(reply.status) \(reply.text.prefix(120))")
            }
        }

        /// Closes the session's connections.
        func close() {
            for connection in connections.values { connection.close() }
            connections.removeAll()
        }
    }

    /// Runs `body(session, index)` for every index in `0..<count`, `concurrency` at a time, each
    /// task with its own session; returns how many succeeded and the failures by reason.
    func forEach(
        count: Int, concurrency: Int, group: any EventLoopGroup,
        _ body: @escaping @Sendable (Session, Int) async throws -> Void
    ) async -> BatchOutcome {
        let next = IndexDispenser(limit: count)
        return await withTaskGroup(of: BatchOutcome.self) { tasks in
            for _ in 0..<max(1, min(concurrency, count)) {
                let loop = group.next()
                tasks.addTask {
                    let session = Session(api: self, loop: loop)
                    defer { session.close() }
                    var outcome = BatchOutcome()
                    while let index = next.take() {
                        do {
                            try await body(session, index)
                            outcome.ok += 1
                        } catch {
                            outcome.fail(reason: FailureReasons.describe(error))
                        }
                    }
                    return outcome
                }
            }
            var total = BatchOutcome()
            for await outcome in tasks { total.merge(outcome) }
            return total
        }
    }
}

/// What a batch of requests achieved.
struct BatchOutcome: Sendable, Codable {
    var ok = 0
    var failures = FailureReasons()

    var failed: Int { failures.total }

    mutating func fail(reason: String) { failures.add(reason) }

    mutating func merge(_ other: BatchOutcome) {
        ok += other.ok
        failures.merge(other.failures)
    }
}

/// Hands out `0..<limit` once each, to any number of tasks.
final class IndexDispenser: Sendable {
    private let counter = Mutex(0)
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// The next index, or `nil` when all were taken.
    func take() -> Int? {
        counter.withLock { value in
            guard value < limit else { return nil }
            defer { value += 1 }
            return value
        }
    }
}

/// `text` as a JSON string literal.
func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
