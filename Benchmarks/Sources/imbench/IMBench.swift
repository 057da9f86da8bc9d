import ArgumentParser
import NIOCore
import NIOPosix

/// Starts `imbench` with Swift concurrency running on NIO's event loops.
@main
enum Entrypoint {
    static func main() async {
        // Tasks then run on the loops that own the sockets: no hop to a separate thread pool
        // per await (what a Swift back-end linking ImHelper should do as well).
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await IMBench.main()
    }
}

/// `imbench`: load generator and meter for ImServer.
///
/// Every run prints a progress line per second on standard error and ends with one
/// `RESULT key=value …` line on standard output; it exits non-zero when a message was lost
/// or duplicated, or a connection failed.
struct IMBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imbench",
        abstract: "Benchmarks ImServer: connections, channel fan-out, point-to-point delivery, clusters.",
        subcommands: [
            ConnectionsCommand.self, FanoutCommand.self, PointToPointCommand.self, ClusterCommand.self,
            WorkerCommand.self,
        ])
}

/// Ends the process with `code` (ArgumentParser treats non-zero as a failure).
func finish(with code: Int32) throws {
    if code != 0 { throw ExitCode(code) }
}

/// Common start of every scenario: more open files, no SIGPIPE.
func prepareProcess() {
    ProcessResources.ignoreBrokenPipes()
    ProcessResources.raiseOpenFileLimit()
}
