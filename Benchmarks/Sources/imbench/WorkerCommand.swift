import ArgumentParser
import Foundation

/// `imbench worker`: a slice of a fleet in a child process (not for direct use).
///
/// Reads commands from standard input, one a line (`MINT`, `CONNECT`, `SNAPSHOT`,
/// `FINISH <json>`, `CLOSE`), runs each in its own task (a `SNAPSHOT` may arrive while
/// `CONNECT` runs), and answers each with one line on standard output.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Runs a slice of the clients for a parent imbench.",
        shouldDisplay: false)

    @Option(help: "The fleet slice, as JSON.")
    var spec: String
    @Option(help: "This worker's number, for messages.")
    var index = 0

    func run() async throws {
        ProcessResources.ignoreBrokenPipes()
        let limit = ProcessResources.raiseOpenFileLimit()
        let spec = try JSONDecoder().decode(FleetSpec.self, from: Data(self.spec.utf8))
        if spec.count + 64 > limit {
            Console.log(
                "worker \(index): \(spec.count) clients but only \(limit) open files allowed; use more --workers")
        }
        let fleet = LocalFleet(spec: spec)
        let commands = LineReader(descriptor: 0)
        await withTaskGroup(of: Void.self) { tasks in
            while let line = await commands.next() {
                let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
                guard let keyword = parts.first else { continue }
                if keyword == "CLOSE" {
                    await tasks.waitForAll()
                    await fleet.close()
                    Console.output("CLOSE {}")
                    return
                }
                let argument = parts.count > 1 ? parts[1] : ""
                tasks.addTask { await Self.answer(keyword, argument, fleet: fleet) }
            }
            await tasks.waitForAll()
            await fleet.close()
        }
    }

    private static func answer(_ keyword: String, _ argument: String, fleet: LocalFleet) async {
        do {
            let reply: any Encodable
            switch keyword {
            case "MINT": reply = try await fleet.mint()
            case "CONNECT": reply = try await fleet.connect()
            case "SNAPSHOT": reply = try await fleet.snapshot()
            case "FINISH":
                let request = try JSONDecoder().decode(FinishRequest.self, from: Data(argument.utf8))
                reply = try await fleet.finish(sent: request.sent, failed: request.failed)
            default:
                throw BenchError.worker("unknown command \(keyword)")
            }
            let json = String(decoding: try JSONEncoder().encode(reply), as: UTF8.self)
            Console.output(keyword + " " + json)
        } catch {
            Console.output("ERROR \(keyword) \(error)".replacingOccurrences(of: "\n", with: " "))
        }
    }
}
