import Foundation
import ImBackplane
import ImBackplaneTesting
import ImSharedDirectory
import Testing

/// A fresh directory per check, so checks run in parallel without seeing each other.
private func freshDirectory() throws -> SharedDirectory {
    let directory = SharedDirectory(path: FileManager.default.temporaryDirectory
        .appendingPathComponent("im-shared-dir-\(UUID().uuidString)").path)
    try directory.create()
    return directory
}

@Suite("shared-dir:// backplane conformance")
struct SharedDirectoryConformanceTests {
    @Test(arguments: BusConformance.Check.allCases)
    func bus(_ check: BusConformance.Check) async throws {
        let directory = try freshDirectory()
        try await BusConformance(makeBus: { LogBus(directory: directory) }).run(check)
    }

    @Test(arguments: PresenceConformance.Check.allCases)
    func presence(_ check: PresenceConformance.Check) async throws {
        let directory = try freshDirectory()
        try await PresenceConformance(makePresence: { FilePresence(directory: directory) }).run(check)
    }

    @Test("shared-dir:// URLs name an absolute directory; others are refused")
    func urls() throws {
        #expect(try SharedDirectory(url: #require(URL(string: "shared-dir:///var/lib/im"))).path == "/var/lib/im")
        for bad in ["shared-dir://host/var", "shared-dir:relative", "shared-dir:///", "redis:///x"] {
            #expect(throws: SharedDirectoryError.self, "\(bad)") { try SharedDirectory(url: #require(URL(string: bad))) }
        }
    }
}
