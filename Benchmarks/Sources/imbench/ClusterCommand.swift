import ArgumentParser
import Foundation
import NIOPosix

/// `imbench cluster`: starts K `imserver` nodes on one backplane and runs a scenario with
/// its clients spread over them (member `i` on node `i % K`).
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Start K imserver nodes, run a connections, fanout or p2p scenario across them, stop them.")

    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        case connections, fanout, p2p
    }

    @Option(help: "Nodes to start.")
    var nodes: Int
    @Option(help: "Backplane URL every node uses (memory:// gives each node a cluster of its own).")
    var backplane = "memory://"
    @Option(help: "Path to the imserver executable.")
    var imserver: String
    @Option(help: "The scenario: connections, fanout or p2p.")
    var scenario = Scenario.connections
    @Option(help: "Public port of node 1 (node i listens on base + i - 1).")
    var basePort = 6101
    @Option(help: "API port of node 1.")
    var baseAPIPort = 6201
    @Option(help: "API key for the nodes.")
    var apiKey: String?
    @Option(help: "Extra IM_* settings for the nodes, KEY=VALUE (repeatable).")
    var env: [String] = []
    @Option(help: "Where the nodes' logs go.")
    var logDirectory = "/tmp/imbench-cluster"
    @Option(help: "connections: how many.")
    var count = 1000
    @Option(help: "connections: seconds to hold them.")
    var hold = 0.0
    @Flag(help: "connections: then broadcast one message and check every connection got it.")
    var broadcast = false
    @Option(help: "fanout: members; p2p: pairs.")
    var members = 100
    @Option(help: "fanout: the channel.")
    var channel = "bench"
    @Option(help: "fanout/p2p: messages per second.")
    var rate = 100.0
    @Option(help: "fanout/p2p: seconds to send.")
    var duration = 10.0
    @Option(help: "fanout/p2p: most seconds to wait for late deliveries.")
    var settle = 5.0
    @Option(help: "fanout/p2p: sends in flight.")
    var inFlight = 8
    @Option(help: "p2p: channels each node also listens to (a receiver per node joins them; nobody sends to them).")
    var listenChannels = 0
    @Option(help: "fanout/p2p: send through the HTTP API (api) or an in-process ImHelper on --backplane (helper).")
    var sender = LoadOptions.Sender.api
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard nodes > 0 else { throw ValidationError("--nodes must be positive") }
        if nodes > 1 && backplane.hasPrefix("memory:") && scenario != .connections {
            throw ValidationError(
                """
                memory:// keeps each node's channels and presence in its own process, so a \(scenario.rawValue) \
                run over \(nodes) nodes would lose messages by design; use a shared backplane URL or --nodes 1
                """)
        }
    }

    func run() async throws {
        prepareProcess()
        var extra: [String: String] = [:]
        for pair in env {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0].hasPrefix("IM_") else {
                throw ValidationError("--env takes IM_KEY=VALUE, got '\(pair)'")
            }
            extra[parts[0]] = parts[1]
        }
        let cluster = NodeCluster()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let code: Int32
        do {
            try cluster.start(
                count: nodes, executable: imserver, backplane: backplane, basePort: basePort,
                baseAPIPort: baseAPIPort, apiKey: apiKey, extraEnvironment: extra,
                logDirectory: logDirectory)
            try await cluster.waitUntilHealthy(timeout: 60, group: group)
            Console.log("\(nodes) node(s) healthy")
            code = try await runScenario(on: cluster)
        } catch {
            await cluster.stop()
            try? await group.shutdownGracefully()
            throw error
        }
        await cluster.stop()
        try? await group.shutdownGracefully()
        try finish(with: code)
    }

    private func runScenario(on cluster: NodeCluster) async throws -> Int32 {
        let targets = Targets(apis: cluster.nodes.map(\.api), apiKey: apiKey, websocket: nil)
        switch scenario {
        case .connections:
            return try await ConnectionsScenario(
                targets: targets, client: client, count: count, hold: hold,
                pids: cluster.pids, broadcast: broadcast
            ).run()
        case .fanout, .p2p:
            var load = try LoadOptions.parse(["--rate", String(rate), "--duration", String(duration)])
            load.settle = settle
            load.inFlight = inFlight
            load.sender = sender
            load.backplane = backplane
            return try await DeliveryScenario(
                plan: scenario == .fanout ? .channel(channel) : .pairs(members),
                targets: targets, client: client, members: members, load: load,
                pids: cluster.pids, listenChannels: listenChannels
            ).run()
        }
    }
}
