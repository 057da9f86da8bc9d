import Foundation

extension LocalServer {
    /// Where Debian puts PostgreSQL 15's server programs (not on `PATH`).
    public static let postgresBinaries = "/usr/lib/postgresql/15/bin"

    /// Whether a PostgreSQL server (`initdb` and `postgres`) is installed.
    public static var postgresInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: postgresBinaries + "/postgres")
            || findExecutable("postgres") != nil
    }

    /// Makes a throw-away PostgreSQL cluster with `initdb` in a temporary directory (user
    /// `postgres`, trust authentication on loopback, database `postgres`) and starts it on
    /// `port` or a free port. Run as root, the server runs as the `postgres` user (PostgreSQL
    /// refuses root) through `setpriv`, which execs, so ``kill()`` reaches the server itself.
    /// The directory is removed when the `LocalServer` goes away or the test process exits. With `persistent`, a
    /// ``restart(timeout:)`` after ``kill()`` keeps the data (unlogged tables are emptied by the
    /// crash recovery, as on a real crash); without, it starts from the cluster as `initdb`
    /// made it (a server replaced by an empty one). With `tls`, the server also speaks TLS,
    /// with that certificate and key (PEM files).
    public static func postgres(
        port: Int? = nil, tls: (certificate: String, key: String)? = nil, persistent: Bool = true
    ) async throws -> LocalServer {
        let folder =
            FileManager.default.isExecutableFile(atPath: postgresBinaries + "/postgres") ? postgresBinaries : nil
        guard let postgres = folder.map({ URL(fileURLWithPath: $0 + "/postgres") }) ?? findExecutable("postgres"),
            let initdb = folder.map({ URL(fileURLWithPath: $0 + "/initdb") }) ?? findExecutable("initdb")
        else { throw LocalServerError.notInstalled("postgresql (initdb, postgres)") }
        let chosen: Int
        if let port { chosen = port } else { chosen = try await freePort() }
        let directory = try makeScratchDirectory("imserver-postgres-\(chosen)")
        let asRoot = getuid() == 0
        if asRoot {
            try FileManager.default.setAttributes(
                [.ownerAccountName: "postgres", .groupOwnerAccountName: "postgres"], ofItemAtPath: directory.path)
        }
        let data = directory.appendingPathComponent("data").path
        let setpriv = asRoot ? findExecutable("setpriv") : nil
        if asRoot, setpriv == nil {
            throw LocalServerError.notInstalled("setpriv (util-linux), to run postgres as its user")
        }
        func command(_ program: URL, _ arguments: [String]) -> (URL, [String]) {
            guard let setpriv else { return (program, arguments) }
            return (setpriv, ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", program.path] + arguments)
        }
        let (initProgram, initArguments) = command(
            initdb, ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])
        let setup = Process()
        setup.executableURL = initProgram
        setup.arguments = initArguments
        setup.standardOutput = FileHandle.nullDevice
        setup.standardError = FileHandle.nullDevice
        try setup.run()
        setup.waitUntilExit()
        guard setup.terminationStatus == 0 else {
            throw LocalServerError.setupFailed("initdb (exit status \(setup.terminationStatus))")
        }
        var tlsSettings: [String] = []
        if let tls {
            // PostgreSQL takes a key only if its user owns it and nobody else may read it.
            let certificate = directory.appendingPathComponent("server.crt").path
            let key = directory.appendingPathComponent("server.key").path
            try FileManager.default.copyItem(atPath: tls.certificate, toPath: certificate)
            try FileManager.default.copyItem(atPath: tls.key, toPath: key)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
            if asRoot {
                for file in [certificate, key] {
                    try FileManager.default.setAttributes(
                        [.ownerAccountName: "postgres", .groupOwnerAccountName: "postgres"], ofItemAtPath: file)
                }
            }
            tlsSettings = ["-c", "ssl=on", "-c", "ssl_cert_file=\(certificate)", "-c", "ssl_key_file=\(key)"]
        }
        var beforeRestart: (@Sendable () throws -> Void)?
        if !persistent {
            let initial = directory.appendingPathComponent("initial").path
            try copyPreservingOwners(data, to: initial)
            beforeRestart = {
                try FileManager.default.removeItem(atPath: data)
                try copyPreservingOwners(initial, to: data)
            }
        }
        let (program, arguments) = command(
            postgres,
            [
                "-D", data, "-p", String(chosen), "-k", directory.path, "-c", "listen_addresses=127.0.0.1",
                "-c", "fsync=off", "-c", "max_connections=200",
            ] + tlsSettings)
        let server = LocalServer(
            executable: program, arguments: arguments, environment: [:], port: chosen, stopGrace: .seconds(5),
            scratchDirectory: directory, beforeRestart: beforeRestart)
        try await server.launch(timeout: .seconds(30))
        return server
    }
}

/// Copies the directory tree at `source` to `destination` with `cp -a` (owners and modes kept:
/// PostgreSQL refuses a data directory that is not its user's).
private func copyPreservingOwners(_ source: String, to destination: String) throws {
    let copy = Process()
    copy.executableURL = URL(fileURLWithPath: "/bin/cp")
    copy.arguments = ["-a", source, destination]
    try copy.run()
    copy.waitUntilExit()
    guard copy.terminationStatus == 0 else {
        throw LocalServerError.setupFailed("cp -a \(source) \(destination) (exit status \(copy.terminationStatus))")
    }
}
