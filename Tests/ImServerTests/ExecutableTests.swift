import Foundation
import ImCore
import ImTesting
import Testing

/// Runs the real `imserver` binary built next to the test bundle.
@Suite("imserver executable")
struct ExecutableTests {
    static let secret = "executable-test-secret-0123456789abcdef"

    private var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("imserver")
    }

    private func launch(_ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return (process, errors)
    }

    private func waitForExit(_ process: Process, timeout: Duration = .seconds(15)) async throws -> Int32 {
        try await waitUntil(timeout: timeout) { !process.isRunning }
        return process.terminationStatus
    }

    @Test("serves health, the JS client and the demo; SIGTERM closes clients with 1001 and exits 0")
    func runsAndShutsDownGracefully() async throws {
        let port = try await freePort()
        let apiPort = try await freePort()
        let (process, _) = try launch(
            [
                "--listen", "127.0.0.1:\(port)", "--api-listen", "127.0.0.1:\(apiPort)", "--demo",
                "--threads", "1",
            ],
            environment: ["IM_TOKEN_SECRET": Self.secret, "IM_NODE_ID": "exe-node"])
        defer { if process.isRunning { process.terminate() } }
        try await waitUntil(timeout: .seconds(20)) {
            (try? await httpRequest("GET", "http://127.0.0.1:\(port)/health"))?.status == 200
        }
        let health = try await httpRequest("GET", "http://127.0.0.1:\(port)/health")
        #expect(health.json?["node"]?.string == "exe-node")
        #expect(try await httpRequest("GET", "http://127.0.0.1:\(port)/imclient.js").text.contains("ImClient"))
        #expect(try await httpRequest("GET", "http://127.0.0.1:\(port)/").text.contains("<html"))

        let login = try await httpRequest("GET", "http://127.0.0.1:\(port)/demo/login?user=alice")
        let url = try #require(login.json?["url"]?.string)
        let alice = try await TestClient.connect(to: url)
        #expect(try await alice.next(type: "ready")["node"]?.string == "exe-node")
        let minted = try await httpRequest(
            "POST", "http://127.0.0.1:\(apiPort)/v1/connect-url", body: #"{"client":"bob"}"#)
        let bob = try await TestClient.connect(to: try #require(minted.json?["url"]?.string))
        _ = try await bob.next(type: "ready")
        try await waitUntil {
            let metrics = try await httpRequest("GET", "http://127.0.0.1:\(apiPort)/metrics").text
            return metrics.contains("imserver_connections 2.0") && metrics.contains("imserver_backplane_up 1.0")
        }

        process.terminate()
        #expect(try await alice.closeCode() == 1001)
        #expect(try await bob.closeCode() == 1001)
        #expect(try await waitForExit(process) == 0)
    }

    @Test("with TLS files the node serves wss:// and the API https://; SIGHUP reloads them; a bad pair stops start-up")
    func tlsAndSIGHUP() async throws {
        let first = try LocalServer.certificateAuthorityAndServerCertificate()
        let second = try LocalServer.certificateAuthorityAndServerCertificate()
        let mismatched = try await failedStart(
            environment: ["IM_PUBLIC_TLS_CERTIFICATE": first.certificate, "IM_PUBLIC_TLS_KEY": second.key])
        #expect(mismatched.0 != 0)
        #expect(mismatched.1.contains("does not belong to the certificate"), "\(mismatched.1)")
        let half = try await failedStart(environment: ["IM_PUBLIC_TLS_KEY": first.key])
        #expect(half.0 != 0)
        #expect(half.1.contains("public.tls.certificate and public.tls.key go together"), "\(half.1)")
        let apiHalf = try await failedStart(
            ["--api-listen", "127.0.0.1:0"], environment: ["IM_API_TLS_CERTIFICATE": first.certificate])
        #expect(apiHalf.0 != 0)
        #expect(apiHalf.1.contains("api.tls.certificate and api.tls.key go together"), "\(apiHalf.1)")

        let port = try await freePort()
        let apiPort = try await freePort()
        let (process, _) = try launch(
            ["--listen", "127.0.0.1:\(port)", "--api-listen", "127.0.0.1:\(apiPort)", "--threads", "1"],
            environment: [
                "IM_TOKEN_SECRET": Self.secret, "IM_PUBLIC_TLS_CERTIFICATE": first.certificate,
                "IM_PUBLIC_TLS_KEY": first.key, "IM_API_TLS_CERTIFICATE": first.certificate,
                "IM_API_TLS_KEY": first.key,
            ])
        defer { if process.isRunning { process.terminate() } }
        func health(trusting authority: String) -> Bool {
            curl(["--cacert", authority, "https://127.0.0.1:\(apiPort)/v1/health"]).contains(#""status":"up""#)
        }
        try await waitUntil(timeout: .seconds(20)) { health(trusting: first.authority) }
        let minted = curl([
            "--cacert", first.authority, "-X", "POST", "-H", "Content-Type: application/json",
            "-d", #"{"client":"alice"}"#, "https://127.0.0.1:\(apiPort)/v1/connect-url",
        ])
        let url = try #require(
            (try? JSONDecoder().decode([String: String].self, from: Data(minted.utf8)))?["url"], "\(minted)")
        #expect(url.hasPrefix("wss://"), "the default public URL is wss:// with TLS: \(url)")
        var options = TestClient.Options()
        options.trustedAuthority = first.authority
        let alice = try await TestClient.connect(to: url, options: options)
        #expect(try await alice.next(type: "ready")["client"]?.string == "alice")
        // A plain single send over TLS, which the API answers on its event loop (APIFastLane).
        let sent = curl([
            "--cacert", first.authority, "-X", "POST", "-H", "Content-Type: application/json",
            "-d", #"{"from":"svc","to":["alice"],"data":"over tls"}"#, "https://127.0.0.1:\(apiPort)/v1/messages",
        ])
        #expect(sent.contains(#""offline":[]"#), "\(sent)")
        #expect(try await alice.next(type: "message")["data"]?.string == "over tls")

        for (source, target) in [(second.certificate, first.certificate), (second.key, first.key)] {
            try Data(contentsOf: URL(fileURLWithPath: source)).write(to: URL(fileURLWithPath: target), options: .atomic)
        }
        kill(process.processIdentifier, SIGHUP)
        try await waitUntil(timeout: .seconds(10)) { health(trusting: second.authority) }
        #expect(!health(trusting: first.authority), "the API serves the new certificate")
        try await alice.send(text: #"{"type":"ping"}"#)
        #expect(try await alice.next(type: "pong")["type"]?.string == "pong", "an open connection stays open")
        process.terminate()
        #expect(try await alice.closeCode() == 1001)
        #expect(try await waitForExit(process) == 0)
    }

    @Test("/metrics counts handshakes, deliveries, frames, bytes, backplane round trips and delivery latency")
    func trafficMetrics() async throws {
        let port = try await freePort()
        let apiPort = try await freePort()
        let (process, _) = try launch(
            ["--listen", "127.0.0.1:\(port)", "--api-listen", "127.0.0.1:\(apiPort)", "--threads", "2"],
            environment: ["IM_TOKEN_SECRET": Self.secret, "IM_HEARTBEAT_INTERVAL": "1"])
        defer { if process.isRunning { process.terminate() } }
        let api = "http://127.0.0.1:\(apiPort)/v1"
        try await waitUntil(timeout: .seconds(20)) { (try? await httpRequest("GET", api + "/health"))?.status == 200 }
        let minted = try await httpRequest("POST", api + "/connect-url", body: #"{"client":"alice"}"#)
        let alice = try await TestClient.connect(to: try #require(minted.json?["url"]?.string))
        _ = try await alice.next(type: "ready")
        for number in 1...3 {
            let sent = try await httpRequest(
                "POST", api + "/messages", body: #"{"from":"bob","to":["alice"],"data":\#(number)}"#)
            #expect(sent.status == 200)
            _ = try await alice.next(type: "message")
        }
        try await alice.send(text: #"{"type":"ping"}"#)
        _ = try await alice.next(type: "pong")

        /// The value of the first sample of `family` (with `labels`, if given) in `text`.
        func value(_ family: String, _ labels: String = "", in text: String) -> Double {
            for line in text.split(separator: "\n") where line.hasPrefix(family + labels + " ") {
                return Double(line.split(separator: " ").last ?? "") ?? 0
            }
            return 0
        }
        // Counters reach /metrics within a second or a heartbeat (1 s here).
        var metrics = ""
        try await waitUntil(timeout: .seconds(10)) {
            metrics = (try? await httpRequest("GET", "http://127.0.0.1:\(apiPort)/metrics").text) ?? ""
            return value("imserver_deliveries_total", in: metrics) >= 3
                && value("imserver_frames_in_total", in: metrics) >= 1
        }
        #expect(value("imserver_handshakes_accepted_total", in: metrics) == 1)
        #expect(value("imserver_frames_out_total", in: metrics) >= 5, "ready, 3 messages, pong")
        #expect(value("imserver_bytes_out_total", in: metrics) > 100)
        #expect(value("imserver_flushes_total", in: metrics) >= 1)
        #expect(value("imserver_bus_messages_in_total", in: metrics) >= 3)
        #expect(value("imserver_delivery_latency_seconds_count", in: metrics) >= 1)
        #expect(value("imserver_backplane_seconds_count", #"{operation="connect"}"#, in: metrics) == 1)
        #expect(value("imserver_backplane_seconds_count", #"{operation="claim_token"}"#, in: metrics) == 1)
        #expect(value("imserver_backplane_errors_total", #"{operation="connect"}"#, in: metrics) == 0)
        process.terminate()
        #expect(try await alice.closeCode() == 1001)
        #expect(try await waitForExit(process) == 0)
    }

    /// Runs `curl -s` with `arguments`; its standard output.
    private func curl(_ arguments: [String]) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s", "--max-time", "5"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return "" }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test("an unknown backplane scheme stops start-up with the list of known schemes")
    func unknownScheme() async throws {
        let (process, errors) = try launch(
            ["--listen", "127.0.0.1:0", "--api-listen", "off"],
            environment: ["IM_BACKPLANE_URL": "bogus://somewhere", "IM_TOKEN_SECRET": Self.secret])
        #expect(try await waitForExit(process) != 0)
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(output.contains("unknown backplane scheme 'bogus://'"))
        #expect(output.contains("memory://"))
    }

    @Test("an API on a public address without a key refuses to start")
    func apiWithoutKey() async throws {
        let (process, errors) = try launch(
            ["--listen", "127.0.0.1:0", "--api-listen", "0.0.0.0:0"],
            environment: ["IM_TOKEN_SECRET": Self.secret])
        #expect(try await waitForExit(process) != 0)
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(output.contains("no API key is configured"))
    }

    @Test("a token secret shorter than 32 bytes is refused")
    func weakSecret() async throws {
        let (process, errors) = try launch([
            "--listen", "127.0.0.1:0", "--api-listen", "off", "--token-secret", "short",
        ])
        #expect(try await waitForExit(process) != 0)
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(output.contains("at least 32 bytes"))
    }

    @Test("a thread count out of range is refused with the key and the allowed range")
    func badThreadCount() async throws {
        let (process, errors) = try launch(
            ["--listen", "127.0.0.1:0", "--api-listen", "off"],
            environment: ["IM_TOKEN_SECRET": Self.secret, "IM_THREADS": "0"])
        #expect(try await waitForExit(process) != 0)
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(output.contains("threads"))
        #expect(output.contains("1 to 1024"))
    }

    /// Runs the binary with `arguments` and `environment`; its exit status and standard error.
    private func failedStart(_ arguments: [String] = [], environment: [String: String]) async throws -> (Int32, String)
    {
        let api = arguments.contains("--api-listen") ? [] : ["--api-listen", "off"]
        let (process, errors) = try launch(
            ["--listen", "127.0.0.1:0"] + api + arguments,
            environment: ["IM_TOKEN_SECRET": Self.secret].merging(environment) { $1 })
        defer { if process.isRunning { process.terminate() } }
        let status = try await waitForExit(process)
        return (status, String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    @Test(
        "a setting out of its range stops start-up with the key named, never a trap",
        arguments: [
            ("IM_LIMITS_MAX_FRAME_SIZE", "5000000000", "limits.maxFrameSize"),
            ("IM_HEARTBEAT_INTERVAL", "1e300", "heartbeat.interval"),
            ("IM_HEARTBEAT_INTERVAL", "nan", "heartbeat.interval"),
            ("IM_TOKEN_LIFETIME", "nan", "token.lifetime"),
            ("IM_TOKEN_LIFETIME", "3600", "token.lifetime"),
            ("IM_LEASE_TTL", "inf", "lease.ttl"),
            ("IM_COMMAND_TIMEOUT", "-1", "command.timeout"),
            ("IM_LIMITS_SLOW_CONSUMER_TIMEOUT", "1e300", "limits.slowConsumerTimeout"),
            ("IM_DELIVERY_FLUSH_INTERVAL", "1e300", "delivery.flushInterval"),
        ])
    func settingOutOfRange(variable: String, value: String, key: String) async throws {
        let (status, output) = try await failedStart(environment: [variable: value])
        #expect(status == 1, "exit status \(status) (a trap is a signal): \(output)")
        #expect(output.contains("setting \(key) = "), "\(output)")
    }

    @Test("an empty or short API key stops start-up with a clear message")
    func emptyOrShortKey() async throws {
        let (flagStatus, flagOutput) = try await failedStart(
            ["--api-listen", "127.0.0.1:0", "--api-key", ""],
            environment: [:])
        #expect(flagStatus == 1)
        #expect(flagOutput.contains("is empty"), "\(flagOutput)")
        let (envStatus, envOutput) = try await failedStart(
            ["--api-listen", "0.0.0.0:0"], environment: ["IM_API_KEY": ""])
        #expect(envStatus == 1)
        #expect(envOutput.contains("is empty"), "\(envOutput)")
        let (shortStatus, shortOutput) = try await failedStart(
            ["--api-listen", "0.0.0.0:0"],
            environment: ["IM_API_KEY": "short"])
        #expect(shortStatus == 1)
        #expect(shortOutput.contains("too short"), "\(shortOutput)")
    }

    @Test("a correctly signed token with an absurd exp is refused and the node keeps running")
    func absurdTokenExpiry() async throws {
        let port = try await freePort()
        let (process, _) = try launch(
            ["--listen", "127.0.0.1:\(port)", "--api-listen", "off", "--threads", "1"],
            environment: ["IM_TOKEN_SECRET": Self.secret])
        defer { if process.isRunning { process.terminate() } }
        try await waitUntil(timeout: .seconds(20)) {
            (try? await httpRequest("GET", "http://127.0.0.1:\(port)/health"))?.status == 200
        }
        for exp in [9.3e18, 1e300] {
            let token = try await TokenExpiryTests.token("mallory", exp: exp, secret: Self.secret)
            await #expect(throws: TestClientError.self) {
                try await TestClient.connect(to: "ws://127.0.0.1:\(port)/ws?token=" + token)
            }
            #expect(try await httpRequest("GET", "http://127.0.0.1:\(port)/health").status == 200, "exp \(exp)")
        }
        process.terminate()
        #expect(try await waitForExit(process) == 0)
    }
}
