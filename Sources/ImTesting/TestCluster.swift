public import ImCore
public import ImHelper
public import ImServer
public import Logging
import NIOPosix
import Synchronization
public import ServiceLifecycle

/// Real ImServer nodes in this process on loopback ports, sharing one backplane, plus an
/// ``ImHelper`` on the same backplane: the harness the end-to-end tests and plugin authors use.
public final class TestCluster: Sendable {
    /// The shared backplane.
    public let backplane: Backplane
    /// A helper on the backplane.
    public let helper: ImHelper
    /// The running nodes.
    public let nodes: [TestNode]
    private let backplaneRunner: ServiceRunner
    /// The Swift clients ``session(_:node:configuration:)`` made: ``stop()`` closes them first,
    /// so none keeps reconnecting after the test.
    let sessions = Mutex<[ClientSession]>([])
    /// Whether ``stop()`` was called: it stops the cluster once.
    private let stopped = Mutex(false)

    private init(backplane: Backplane, helper: ImHelper, nodes: [TestNode], backplaneRunner: ServiceRunner) {
        self.backplane = backplane
        self.helper = helper
        self.nodes = nodes
        self.backplaneRunner = backplaneRunner
    }

    /// Starts `count` nodes on `backplane` (a fresh memory backplane by default; the cluster
    /// runs it, so do not run it yourself), each on a free loopback port; `configure` adjusts each node's configuration (given its index),
    /// `transports` gives each node transports besides its WebSocket listener (an
    /// ``InMemoryTransport``, say).
    /// Returns once every node is linked to the backplane (ready for connections), unless
    /// `waitUntilLinked` is `false` (to test a node whose backplane is not up).
    public static func start(
        nodes count: Int = 1, backplane: Backplane = .memory(), secret: String = "test-secret-of-at-least-32-bytes!!",
        waitUntilLinked: Bool = true, configure: (inout NodeConfiguration, Int) -> Void = { _, _ in },
        transports: (NodeCore) -> [any Transport] = { _ in [] }
    ) async throws -> TestCluster {
        var logger = Logger(label: "test-cluster")
        logger.logLevel = .warning
        let backplaneRunner = ServiceRunner(service: backplane, logger: logger)
        let tokens = try await ConnectTokens(secret: secret)
        var nodes: [TestNode] = []
        for index in 0..<count {
            var configuration = NodeConfiguration(nodeID: NodeID(rawValue: "test-node-\(index)"), port: 0)
            configure(&configuration, index)
            nodes.append(
                try await TestNode.start(
                    configuration: configuration, backplane: backplane,
                    tokens: tokens, waitUntilLinked: waitUntilLinked, transports: transports, logger: logger))
        }
        let helper = ImHelper(
            backplane: backplane, tokens: tokens,
            configuration: HelperConfiguration(publicURL: nodes.first?.url ?? "ws://127.0.0.1:1/ws"),
            logger: logger)
        return TestCluster(backplane: backplane, helper: helper, nodes: nodes, backplaneRunner: backplaneRunner)
    }

    /// Runs `body` with a cluster started as ``start(nodes:backplane:secret:waitUntilLinked:configure:transports:)``
    /// does, and stops it afterwards, also when `body` throws (so a failing test cleans up).
    public static func with<Result>(
        nodes count: Int = 1, backplane: Backplane = .memory(), secret: String = "test-secret-of-at-least-32-bytes!!",
        waitUntilLinked: Bool = true, configure: (inout NodeConfiguration, Int) -> Void = { _, _ in },
        transports: (NodeCore) -> [any Transport] = { _ in [] },
        _ body: (TestCluster) async throws -> Result
    ) async throws -> Result {
        let cluster = try await start(
            nodes: count, backplane: backplane, secret: secret, waitUntilLinked: waitUntilLinked,
            configure: configure, transports: transports)
        let result: Result
        do {
            result = try await body(cluster)
        } catch {
            try? await cluster.stop()
            throw error
        }
        try await cluster.stop()
        return result
    }

    /// Opens an event stream (``EventStreamClient``) for `user` on node `node` and waits for
    /// its `ready` frame.
    public func connectStream(_ user: ClientID, node: Int = 0) async throws -> EventStreamClient {
        let client = try await EventStreamClient.connect(to: try await url(for: user, node: node))
        let ready = try await client.awaitReady()
        guard ready["client"]?.string == user.rawValue else {
            await client.close()
            throw TestClientError.unexpected(.text(ready.description))
        }
        return client
    }

    /// A connect URL for `user` on node `node`.
    public func url(for user: ClientID, node: Int = 0, meta: String? = nil) async throws -> String {
        let token = try await helper.tokens.mint(for: user, meta: meta)
        return nodes[node].url + "?token=" + token
    }

    /// Connects `user` to node `node` and waits for the `ready` frame.
    public func connect(
        _ user: ClientID, node: Int = 0, meta: String? = nil,
        options: TestClient.Options = TestClient.Options()
    ) async throws -> TestClient {
        let client = try await TestClient.connect(
            to: try await url(for: user, node: node, meta: meta), options: options)
        let ready = try await client.awaitReady()
        guard ready["client"]?.string == user.rawValue else {
            await client.close()
            throw TestClientError.unexpected(.text(ready.description))
        }
        return client
    }

    /// Stops every node gracefully, then the helper, and the backplane last: the nodes'
    /// unregistrations and offline announcements need it (the order `NodeServices` keeps).
    /// Only the first call does anything, so a test inside ``with(nodes:backplane:secret:waitUntilLinked:configure:transports:_:)``
    /// may stop the cluster itself (to see what stopping does) and still be cleaned up if it fails first.
    public func stop() async throws {
        let first = stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        for session in sessions.withLock({ $0 }) { await session.close() }
        for node in nodes { try await node.stop() }
        await helper.close()
        try await backplaneRunner.stop()
    }
}

/// One running node of a ``TestCluster``.
public final class TestNode: Sendable {
    /// The node.
    public let node: ImNode
    /// Its public port.
    public let port: Int
    private let runner: ServiceRunner

    /// `ws://127.0.0.1:<port><path>`.
    public var url: String { "ws://127.0.0.1:\(port)\(node.core.configuration.path)" }

    private init(node: ImNode, port: Int, runner: ServiceRunner) {
        self.node = node
        self.port = port
        self.runner = runner
    }

    static func start(
        configuration: NodeConfiguration, backplane: Backplane, tokens: ConnectTokens,
        waitUntilLinked: Bool, transports: (NodeCore) -> [any Transport], logger: Logger
    ) async throws -> TestNode {
        let node = ImNode(
            configuration: configuration, backplane: backplane, tokens: tokens, logger: logger,
            transports: transports)
        let runner = ServiceRunner(service: node, logger: logger)
        guard let port = await node.transport.waitUntilBound() else {
            try? await runner.stop()
            throw TestClusterError.nodeDidNotStart(configuration.nodeID)
        }
        let started = TestNode(node: node, port: port, runner: runner)
        if waitUntilLinked {
            do {
                try await waitUntil(timeout: .seconds(10)) { node.isLinked }
            } catch {
                try? await runner.stop()
                throw TestClusterError.nodeDidNotStart(configuration.nodeID)
            }
        }
        return started
    }

    /// The node's ``InMemoryTransport``, if it was given one.
    public var inMemory: InMemoryTransport? {
        node.otherTransports.lazy.compactMap { $0 as? InMemoryTransport }.first
    }

    /// Shuts the node down gracefully and waits until it has.
    public func stop() async throws { try await runner.stop() }
}

/// Runs one service in its own service group until stopped.
public final class ServiceRunner: Sendable {
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Starts running `service`.
    public init(service: any Service, logger: Logger) {
        let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [], logger: logger))
        self.group = group
        self.task = Task { try await group.run() }
    }

    /// Shuts the service down gracefully and waits until it has.
    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }

    /// Runs `body` while `service` runs, and stops the service afterwards, also when `body`
    /// throws (so a failing test cleans up).
    public static func with<Result>(
        _ service: any Service, logger: Logger, _ body: () async throws -> Result
    ) async throws -> Result {
        let runner = ServiceRunner(service: service, logger: logger)
        let result: Result
        do {
            result = try await body()
        } catch {
            try? await runner.stop()
            throw error
        }
        try await runner.stop()
        return result
    }
}

/// Why the harness failed.
public enum TestClusterError: Error, CustomStringConvertible {
    /// A node never bound its port.
    case nodeDidNotStart(NodeID)

    public var description: String {
        switch self {
        case .nodeDidNotStart(let node): "node \(node) did not start"
        }
    }
}
