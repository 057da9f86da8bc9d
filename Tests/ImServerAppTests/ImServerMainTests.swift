import Foundation
import ImCore
import Logging
import Testing

@testable import ImServerApp

@Suite("The stock server as a library")
struct ImServerMainTests {
    @Test(
        "schemes a package adds through ImServerMain reach the stock server's backplane factory, next to the built-in ones"
    )
    func pluginsReachTheFactory() async throws {
        ImServerMain.extraPlugins.withLock { plugins in
            plugins = { factory in factory.register(scheme: "loopback-test") { _, _ in .memory() } }
        }
        defer { ImServerMain.extraPlugins.withLock { $0 = { _ in } } }
        let factory = BackplaneFactory.withPlugins()
        #expect(Set(factory.schemes).isSuperset(of: ["memory", "redis", "rediss", "loopback-test"]))
        let backplane = try await factory.makeBackplane(url: "loopback-test://anything", logger: Logger(label: "test"))
        #expect(backplane.bus.health.isUp)
    }
}
