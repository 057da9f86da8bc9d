import Foundation
import Synchronization

/// One worker process as its parent sees it: commands go to its standard input, and each
/// reply comes back on its standard output as a line `KEYWORD <json>` (or
/// `ERROR KEYWORD <text>`), named after the command it answers.
final class WorkerProcess: @unchecked Sendable {
    private let process: Process
    private let input: LineWriter
    private let replies: LineReader
    private let inputHandle: FileHandle
    private struct Waiting {
        /// Callers waiting per keyword, oldest first (the worker answers each keyword in order).
        var waiters: [String: [CheckedContinuation<String, any Error>]] = [:]
        var early: [String: Result<String, BenchError>] = [:]
        var exited = false
    }
    private let waiting = Mutex(Waiting())

    /// Starts `executable worker --spec <json>`.
    init(executable: String, spec: FleetSpec, index: Int) throws {
        let json = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
        let stdin = Pipe()
        let stdout = Pipe()
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["worker", "--spec", json, "--index", String(index)]
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        inputHandle = stdin.fileHandleForWriting
        input = LineWriter(descriptor: stdin.fileHandleForWriting.fileDescriptor)
        replies = LineReader(descriptor: stdout.fileHandleForReading.fileDescriptor)
        let replies = self.replies
        Task { [weak self] in
            while let line = await replies.next() { self?.dispatch(line) }
            self?.exited()
        }
    }

    /// Sends `keyword` (with an optional JSON argument) and returns the reply's JSON.
    func request(_ keyword: String, _ argument: String? = nil) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            let early: Result<String, BenchError>? = waiting.withLock { state in
                if let result = state.early.removeValue(forKey: keyword) { return result }
                if state.exited { return .failure(.worker("worker exited")) }
                state.waiters[keyword, default: []].append(continuation)
                return nil
            }
            if let early {
                continuation.resume(with: early.mapError { $0 as any Error })
                return
            }
            if !input.write(argument.map { keyword + " " + $0 } ?? keyword) {
                let waiter = waiting.withLock { $0.waiters[keyword]?.popLast() }
                waiter?.resume(throwing: BenchError.worker("worker's input is closed"))
            }
        }
    }

    /// Sends `keyword` and decodes the reply as `T`.
    func request<T: Decodable>(_ keyword: String, _ argument: String? = nil, as type: T.Type) async throws -> T {
        let json = try await request(keyword, argument)
        return try JSONDecoder().decode(T.self, from: Data(json.utf8))
    }

    /// Waits up to `timeout` seconds for the process to exit, then terminates it.
    func waitForExit(timeout: Double) async {
        let deadline = MonotonicClock.now() + UInt64(timeout * 1e9)
        while process.isRunning && MonotonicClock.now() < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if process.isRunning { process.terminate() }
        try? inputHandle.close()
    }

    private func dispatch(_ line: String) {
        let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
        guard let keyword = parts.first else { return }
        let result: Result<String, BenchError>
        let key: String
        if keyword == "ERROR" {
            let rest = (parts.count > 1 ? parts[1] : "").split(separator: " ", maxSplits: 1).map(String.init)
            key = rest.first ?? ""
            result = .failure(.worker(rest.count > 1 ? rest[1] : "failed"))
        } else {
            key = keyword
            result = .success(parts.count > 1 ? parts[1] : "")
        }
        let waiter = waiting.withLock { state -> CheckedContinuation<String, any Error>? in
            if var queue = state.waiters[key], !queue.isEmpty {
                let waiter = queue.removeFirst()
                state.waiters[key] = queue.isEmpty ? nil : queue
                return waiter
            }
            state.early[key] = result
            return nil
        }
        waiter?.resume(with: result.mapError { $0 as any Error })
    }

    private func exited() {
        let waiters = waiting.withLock { state in
            state.exited = true
            defer { state.waiters.removeAll() }
            return state.waiters.values.flatMap { $0 }
        }
        for waiter in waiters { waiter.resume(throwing: BenchError.worker("worker exited")) }
    }
}
