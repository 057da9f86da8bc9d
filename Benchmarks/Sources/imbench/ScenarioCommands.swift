import ArgumentParser

/// `imbench connections`: opens N authenticated WebSockets and measures handshakes and memory.
struct ConnectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connections",
        abstract: "Open N authenticated WebSockets; report handshakes/s, failures and server memory per connection.")

    @OptionGroup var server: ServerOptions
    @OptionGroup var client: ClientOptions
    @Option(help: "How many connections to open.")
    var count: Int
    @Option(help: "Seconds to hold the connections open before closing them.")
    var hold = 0.0
    @Flag(help: "Then broadcast one message through the API and check that every connection got it.")
    var broadcast = false

    func run() async throws {
        prepareProcess()
        let scenario = ConnectionsScenario(
            targets: try server.targets(), client: client, count: count, hold: hold,
            pids: client.pid.map { [$0] } ?? [], broadcast: broadcast)
        try finish(with: try await scenario.run())
    }
}

/// `imbench fanout`: M members of one channel, R channel messages per second through the API.
struct FanoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "M members join one channel; send R messages/s to it through the API; measure delivery.")

    @OptionGroup var server: ServerOptions
    @OptionGroup var client: ClientOptions
    @OptionGroup var load: LoadOptions
    @Option(help: "Members connected and joined to the channel.")
    var members: Int
    @Option(help: "The channel's name.")
    var channel = "bench"

    func run() async throws {
        prepareProcess()
        let scenario = DeliveryScenario(
            plan: .channel(channel), targets: try server.targets(), client: client,
            members: members, load: load, pids: client.pid.map { [$0] } ?? [])
        try finish(with: try await scenario.run())
    }
}

/// `imbench p2p`: M sender→receiver pairs, R direct messages per second through the API (or,
/// with `--peer centrifuge://…`, publications to each receiver's personal channel).
struct PointToPointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "p2p",
        abstract: "M pairs s<i>→r<i>; send R messages/s round-robin over the pairs through the API; measure delivery.")

    @OptionGroup var server: ServerOptions
    @OptionGroup var client: ClientOptions
    @OptionGroup var load: LoadOptions
    @Option(help: "Sender→receiver pairs (the receivers connect).")
    var pairs: Int

    func validate() throws {
        guard pairs > 0 else { throw ValidationError("--pairs must be positive") }
    }

    func run() async throws {
        prepareProcess()
        let scenario = DeliveryScenario(
            plan: .pairs(pairs), targets: try server.targets(), client: client,
            members: pairs, load: load, pids: client.pid.map { [$0] } ?? [])
        try finish(with: try await scenario.run())
    }
}
