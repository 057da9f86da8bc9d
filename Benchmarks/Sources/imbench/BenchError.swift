/// Why a benchmark could not run (as opposed to ran and measured failures).
enum BenchError: Error, CustomStringConvertible {
    /// A command-line value is unusable.
    case invalidArgument(String)
    /// The server did something the benchmark cannot go on from.
    case server(String)
    /// A worker process failed or broke the line protocol.
    case worker(String)
    /// A member had no connect URL because minting it failed.
    case noConnectURL

    var description: String {
        switch self {
        case .invalidArgument(let text): "invalid argument: \(text)"
        case .server(let text): "server: \(text)"
        case .worker(let text): "worker: \(text)"
        case .noConnectURL: "no connect URL (minting failed)"
        }
    }
}
