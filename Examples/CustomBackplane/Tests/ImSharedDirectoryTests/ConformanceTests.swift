import Foundation
import ImBackplane
import ImBackplaneTesting
import ImSharedDirectory
import Testing

/// Runs `body` with a fresh directory, so checks run in parallel without seeing each other;
/// the directory is removed afterwards, also when the check fails.
private func withFreshDirectory(_ body: (SharedDirectory) async throws -> Void) async throws {
    let directory = SharedDirectory(
        path: FileManager.default.temporaryDirectory
            .appendingPathComponent("im-shared-dir-\(UUID().uuidString)").path)
    try directory.create()
    defer { try? FileManager.default.removeItem(atPath: directory.path) }
    try await body(directory)
}

/// The backend's restart: the directory disappears (moved away in one step) and comes back
/// empty, as a server restarted without persistence.
private func restart(_ directory: SharedDirectory) -> @Sendable () async throws -> Void {
    {
        let gone = directory.path + ".gone-\(UUID().uuidString)"
        try FileManager.default.moveItem(atPath: directory.path, toPath: gone)
        try await Task.sleep(for: .milliseconds(50))  // the backend is down for a moment, as a real restart is
        try directory.create()
        try? FileManager.default.removeItem(atPath: gone)
    }
}

@Suite("shared-dir:// backplane conformance")
struct SharedDirectoryConformanceTests {
    @Test(arguments: BusConformance.Check.allCases)
    func bus(_ check: BusConformance.Check) async throws {
        try await withFreshDirectory { directory in
            let outcome = try await BusConformance(
                restartBackend: restart(directory),
                makeBus: {
                    LogBus(directory: directory)
                }
            ).run(check)
            #expect(outcome == .passed)
        }
    }

    @Test(arguments: PresenceConformance.Check.allCases)
    func presence(_ check: PresenceConformance.Check) async throws {
        try await withFreshDirectory { directory in
            let outcome = try await PresenceConformance(
                restartBackend: restart(directory),
                makePresence: {
                    FilePresence(directory: directory)
                }
            ).run(check)
            #expect(outcome == .passed)
        }
    }

    @Test("shared-dir:// URLs name an absolute directory; others are refused")
    func urls() throws {
        #expect(try SharedDirectory(url: #require(URL(string: "shared-dir:///var/lib/im"))).path == "/var/lib/im")
        for bad in ["shared-dir://host/var", "shared-dir:relative", "shared-dir:///", "redis:///x"] {
            #expect(throws: SharedDirectoryError.self, "\(bad)") {
                try SharedDirectory(url: #require(URL(string: bad)))
            }
        }
    }
}
