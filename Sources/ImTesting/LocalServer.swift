public import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Every server process a test started and has not yet seen exit; killed when the test
/// process exits, so a shared server (held by a `static`) never outlives its test run.
private let runningServers = Mutex(Set<Int32>())

/// Every temporary directory made for a server's data or a certificate and not yet removed;
/// removed when the test process exits, so a shared server (held by a `static`, never
/// deinitialised) and the certificates leave nothing in the temporary folder.
private let scratchDirectories = Mutex(Set<String>())

private let cleanUpAtExit: Void = {
    atexit {
        for pid in runningServers.withLock({ $0 }) { kill(pid, SIGKILL) }
        for path in scratchDirectories.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }
}()

/// Makes a new directory in the temporary folder, named `prefix` and a UUID, removed when the
/// test process exits (or earlier, with ``removeScratchDirectory(_:)``).
func makeScratchDirectory(_ prefix: String) throws -> URL {
    _ = cleanUpAtExit
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
        "\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    scratchDirectories.withLock { _ = $0.insert(directory.path) }
    return directory
}

/// Whether `directory` is one ``makeScratchDirectory(_:)`` made and that is still to be removed.
func isScratchDirectory(_ directory: URL) -> Bool {
    scratchDirectories.withLock { $0.contains(directory.path) }
}

/// Removes a directory made by ``makeScratchDirectory(_:)`` now.
func removeScratchDirectory(_ directory: URL) {
    try? FileManager.default.removeItem(at: directory)
    scratchDirectories.withLock { _ = $0.remove(directory.path) }
}

/// A real server process (redis-server, a node's `imserver`, …) started by a test on loopback.
public final class LocalServer: Sendable {
    /// The port it listens on.
    public let port: Int
    private let executable: URL
    private let arguments: [String]
    private let environment: [String: String]
    private let process: LockedProcess
    /// How long ``stop(timeout:)`` waits after SIGTERM before it kills the process.
    private let stopGrace: Duration
    /// A directory of the server's own data, removed with the `LocalServer` (or when the test
    /// process exits, for one that is never released).
    let scratchDirectory: URL?
    /// Where its output goes, if anywhere.
    private let log: URL?
    /// What ``restart(timeout:)`` does first: for a server whose data must not survive a
    /// restart, though it needs a directory to run, it empties or resets that directory.
    private let beforeRestart: (@Sendable () throws -> Void)?

    init(
        executable: URL, arguments: [String], environment: [String: String], port: Int,
        stopGrace: Duration, scratchDirectory: URL? = nil, log: URL? = nil,
        beforeRestart: (@Sendable () throws -> Void)? = nil
    ) {
        self.beforeRestart = beforeRestart
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.port = port
        self.process = LockedProcess()
        self.stopGrace = stopGrace
        self.scratchDirectory = scratchDirectory
        self.log = log
    }

    /// Starts `executable` with `arguments` and waits until `port` accepts connections;
    /// ``stop(timeout:)`` waits `stopGrace` for it to exit on SIGTERM before killing it. Its
    /// standard output and error are dropped, or appended to `log` when one is given (every
    /// start, restarts included).
    public static func start(
        _ executable: URL, arguments: [String], environment: [String: String] = [:],
        port: Int, timeout: Duration = .seconds(20), stopGrace: Duration = .seconds(20), log: URL? = nil
    )
        async throws -> LocalServer
    {
        let server = LocalServer(
            executable: executable, arguments: arguments, environment: environment, port: port,
            stopGrace: stopGrace, log: log)
        try await server.launch(timeout: timeout)
        return server
    }

    /// Starts `redis-server` on loopback in a temporary directory: on `port`, or a free port
    /// when `nil` (pass a port to start Redis where a node already waits for it). With `tls`,
    /// the port speaks only TLS with that certificate and key (PEM files).
    ///
    /// Without `persistent` nothing is written: after ``kill()`` and ``restart(timeout:)`` the
    /// data is gone. With `persistent`, every write is in an append-only file
    /// (`--appendonly yes --appendfsync always`), which a restart reads again: the data survives
    /// a ``kill()``. Either way it runs in a directory of its own, removed when the `LocalServer`
    /// goes away or the test process exits.
    public static func redis(
        port: Int? = nil, tls: (certificate: String, key: String)? = nil, persistent: Bool = false
    ) async throws -> LocalServer {
        guard let binary = findExecutable("redis-server") else { throw LocalServerError.notInstalled("redis-server") }
        let chosen: Int
        if let port { chosen = port } else { chosen = try await freePort() }
        let port = chosen
        let directory = try makeScratchDirectory("imserver-redis-\(port)")
        var listen = ["--port", String(port)]
        if let tls {
            listen = [
                "--port", "0", "--tls-port", String(port), "--tls-cert-file", tls.certificate,
                "--tls-key-file", tls.key, "--tls-auth-clients", "no",
            ]
        }
        let persistence = persistent ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]
        let server = LocalServer(
            executable: binary,
            arguments: listen + ["--bind", "127.0.0.1", "--save", ""] + persistence + [
                "--dir", directory.path, "--loglevel", "warning",
            ],
            environment: [:], port: port, stopGrace: .seconds(2), scratchDirectory: directory)
        try await server.launch(timeout: .seconds(20))
        return server
    }

    /// Starts `nats-server` with JetStream (`-js`) on loopback, on `port` or a free port when `nil`,
    /// its store in a directory of its own (removed when the `LocalServer` goes away or the test
    /// process exits), so a
    /// ``restart(timeout:)`` after ``kill()`` keeps what JetStream wrote to disk; without
    /// `persistent`, a restart starts from an empty store. With `tls`, clients must speak TLS,
    /// with that certificate and key (PEM files).
    public static func nats(
        port: Int? = nil, tls: (certificate: String, key: String)? = nil, persistent: Bool = true
    ) async throws -> LocalServer {
        guard let binary = findExecutable("nats-server") else { throw LocalServerError.notInstalled("nats-server") }
        let chosen: Int
        if let port { chosen = port } else { chosen = try await freePort() }
        let directory = try makeScratchDirectory("imserver-nats-\(chosen)")
        let server = LocalServer(
            executable: binary,
            arguments: ["-a", "127.0.0.1", "-p", String(chosen), "-js", "-sd", directory.path]
                + (tls.map { ["--tls", "--tlscert", $0.certificate, "--tlskey", $0.key] } ?? []),
            environment: [:], port: chosen, stopGrace: .seconds(5), scratchDirectory: directory,
            beforeRestart: persistent ? nil : emptying(directory))
        try await server.launch(timeout: .seconds(20))
        return server
    }

    /// Writes a self-signed certificate for 127.0.0.1 and its key into a new temporary folder
    /// (with `openssl`), removed when the test process exits; returns their paths.
    public static func selfSignedCertificate() throws -> (certificate: String, key: String) {
        let directory = try makeScratchDirectory("imserver-tls")
        let certificate = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        try openssl([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", certificate,
        ])
        return (certificate, key)
    }

    /// Writes a certificate authority and a certificate for 127.0.0.1 it signed, with its key,
    /// into a new temporary folder (with `openssl`), removed when the test process exits; returns
    /// their paths. (BoringSSL, under
    /// SwiftNIO SSL, does not accept a self-signed server certificate as its own root.)
    public static func certificateAuthorityAndServerCertificate() throws -> (
        authority: String, certificate: String, key: String
    ) {
        let directory = try makeScratchDirectory("imserver-tls")
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        try openssl([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=imserver test CA",
            "-keyout", path("ca.key"), "-out", path("ca.pem"),
        ])
        try openssl([
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", path("key.pem"),
            "-out", path("server.csr"),
        ])
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: path("san.ext"), atomically: true, encoding: .utf8)
        try openssl([
            "x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", path("san.ext"), "-out", path("cert.pem"),
        ])
        return (path("ca.pem"), path("cert.pem"), path("key.pem"))
    }

    private static func openssl(_ arguments: [String]) throws {
        guard let openssl = findExecutable("openssl") else { throw LocalServerError.notInstalled("openssl") }
        let process = Process()
        process.executableURL = openssl
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw LocalServerError.setupFailed(
                "openssl \(arguments.prefix(1).joined()) (exit status \(process.terminationStatus))")
        }
    }

    func launch(timeout: Duration) async throws {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        var logHandle: FileHandle?
        if let log {
            if !FileManager.default.fileExists(atPath: log.path) {
                _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            }
            let handle = try FileHandle(forWritingTo: log)
            try handle.seekToEnd()
            logHandle = handle
        }
        process.standardOutput = logHandle ?? FileHandle.nullDevice
        process.standardError = logHandle ?? FileHandle.nullDevice
        _ = cleanUpAtExit
        defer { try? logHandle?.close() }  // the child has its own copy
        try process.run()
        let pid = process.processIdentifier
        runningServers.withLock { _ = $0.insert(pid) }
        self.process.set(process)
        let port = self.port
        try await waitUntil(timeout: timeout) {
            guard process.isRunning else { throw LocalServerError.exited(self.executable.lastPathComponent) }
            return await Self.accepts(port: port)
        }
    }

    /// Whether the process is running.
    public var isRunning: Bool { process.get()?.isRunning ?? false }

    /// The process id, while it runs.
    public var pid: Int32? {
        guard let process = process.get(), process.isRunning else { return nil }
        return process.processIdentifier
    }

    /// The process's resident set size in bytes (`VmRSS` of `/proc/<pid>/status`; Linux only),
    /// or `nil` when it is not running or the value cannot be read.
    public var residentBytes: Int? {
        guard let pid, let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else {
            return nil
        }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            // "VmRSS:	  123456 kB"
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let kilobytes = Int(fields[1]) else { return nil }
            return kilobytes * 1024
        }
        return nil
    }

    /// Stops it with SIGTERM and waits until it exited; returns its exit status. A process that
    /// has not exited within `timeout` is killed (SIGKILL): a child of a test process can inherit
    /// a blocked SIGTERM (the test's threads block signals that ServiceLifecycle handles), and
    /// redis-server then never sees it.
    /// (A redis-server started here gets 2 s: it has nothing to save.)
    /// A paused process (``pause()``) is resumed first, so it sees the SIGTERM.
    @discardableResult
    public func stop(timeout: Duration? = nil) async throws -> Int32 {
        if let process = process.get(), process.isRunning { Foundation.kill(process.processIdentifier, SIGCONT) }
        do {
            return try await signal(SIGTERM, timeout: timeout ?? stopGrace)
        } catch is TimedOut {
            return try await signal(SIGKILL, timeout: .seconds(10))
        }
    }

    /// Kills it and every process it started with SIGKILL, and waits until it is gone.
    public func kill() async throws {
        // Every process of the server dies at once, as in a crash of its machine: stopped
        // first, so none is started in between, then killed.
        for pid in (try? sendToTree(SIGSTOP)) ?? [] { Foundation.kill(pid, SIGKILL) }
        _ = try await signal(SIGKILL, timeout: .seconds(10))
    }

    /// Stops the process with SIGSTOP: it keeps its sockets open (the kernel still accepts
    /// connections on its port) but runs no code and answers nothing, like a hung server, until
    /// ``resume()``. ``stop(timeout:)`` and ``kill()`` work on a paused process.
    public func pause() throws {
        try sendToTree(SIGSTOP)
    }

    /// Lets a process stopped by ``pause()`` run again (SIGCONT).
    public func resume() throws {
        try sendToTree(SIGCONT)
    }

    /// Sends `signal` to the server and every process it started (PostgreSQL serves each
    /// connection from a process of its own: stopping only the first would hang nothing).
    /// The server is signalled first, so it starts no new process meanwhile.
    @discardableResult
    private func sendToTree(_ signal: Int32) throws -> [Int32] {
        guard let process = process.get(), process.isRunning else {
            throw LocalServerError.notRunning(executable.lastPathComponent)
        }
        var pending = [process.processIdentifier]
        var seen = Set<Int32>()
        while let pid = pending.popLast() {
            guard seen.insert(pid).inserted else { continue }
            Foundation.kill(pid, signal)
            pending += childProcesses(of: pid)
        }
        return Array(seen)
    }

    /// Starts it again on the same port (after ``stop(timeout:)`` or ``kill()``).
    public func restart(timeout: Duration = .seconds(20)) async throws {
        try beforeRestart?()
        try await launch(timeout: timeout)
    }

    private func signal(_ signal: Int32, timeout: Duration) async throws -> Int32 {
        guard let process = process.get() else { return 0 }
        if process.isRunning { Foundation.kill(process.processIdentifier, signal) }
        try await waitUntil(timeout: timeout) { !process.isRunning }
        let pid = process.processIdentifier
        runningServers.withLock { _ = $0.remove(pid) }
        return process.terminationStatus
    }

    deinit {
        if let process = process.get(), process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        if let scratchDirectory { removeScratchDirectory(scratchDirectory) }
    }

    private static func accepts(port: Int) async -> Bool {
        guard
            let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
        else { return false }
        try? await channel.close()
        return true
    }
}

/// Why a local server could not be used.
public enum LocalServerError: Error, CustomStringConvertible {
    /// The program is not installed (not on PATH).
    case notInstalled(String)
    /// The program exited before it listened.
    case exited(String)
    /// No port in the range ``freePort()`` uses could be bound.
    case noFreePort
    /// The process is not running (it was never started, or has exited), so it cannot be signalled.
    case notRunning(String)
    /// A step that prepares the server's files failed (`initdb`, a copy of its data).
    case setupFailed(String)

    public var description: String {
        switch self {
        case .notInstalled(let name): "\(name) is not installed (scripts/test.sh installs it)"
        case .exited(let name): "\(name) exited before it accepted connections"
        case .noFreePort: "no free loopback port in 20000–31999"
        case .notRunning(let name): "\(name) is not running"
        case .setupFailed(let step): "\(step) failed"
        }
    }
}

/// A port that was free a moment ago on 127.0.0.1.
public func freePort() async throws -> Int {
    // Below the kernel's ephemeral range (32768–60999 on Linux): a port handed out from inside it
    // can be taken by any client socket's connect before the server binds it, and the tests open
    // thousands of client sockets. Out here only another freePort() could take it.
    let ports = testPorts.withLock { state -> [Int] in
        (0..<64).map { _ in
            state = state % 12_000 + 1
            return 20_000 + (state * 7_919) % 12_000
        }
    }
    for port in ports {
        do {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: port).get()
            try await channel.close()
            return port
        } catch {
            continue  // in use: the next one
        }
    }
    throw LocalServerError.noFreePort
}

/// Where ``freePort()`` goes on looking; starts at a random place so two test processes rarely
/// walk the same sequence.
private let testPorts = Mutex(Int.random(in: 0..<12_000))

/// The full path of `name` on PATH (and the usual sbin folders), if it is there.
public func findExecutable(_ name: String) -> URL? {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/usr/local/bin:/usr/bin:/sbin"
    for folder in path.split(separator: ":") {
        let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    return nil
}

/// Whether the tests run in CI, where a missing server is a failure, not a skip.
public var isContinuousIntegration: Bool { ProcessInfo.processInfo.environment["CI"] != nil }

/// A `Process` reference that can be replaced on restart.
private final class LockedProcess: @unchecked Sendable {
    private let lock = NSLock()
    private var process: Process?

    func set(_ process: Process) { lock.withLock { self.process = process } }
    func get() -> Process? { lock.withLock { process } }
}

/// What removes everything in `directory`, keeping the directory.
private func emptying(_ directory: URL) -> @Sendable () throws -> Void {
    {
        for item in (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? []
        {
            try FileManager.default.removeItem(at: item)
        }
    }
}

/// The processes whose parent is `pid` (from `/proc/<pid>/stat` of every process).
private func childProcesses(of pid: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry -> Int32? in
        guard let child = Int32(entry),
            let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm) ": the state, then the parent's pid.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 1, Int32(fields[1]) == pid else { return nil }
        return child
    }
}
