import Foundation
@testable import ImTesting
import Testing

/// The servers and certificates the tests make leave nothing in the temporary folder.
@Suite("Test servers clean up their temporary directories")
struct LocalServerCleanupTests {
    @Test(
        "A Redis without persistence runs in a directory of its own, removed when the server is released",
        .enabled(if: redisAvailable))
    func redisDirectoryIsRemoved() async throws {
        var redis: LocalServer? = try await LocalServer.redis()
        let directory = try #require(redis?.scratchDirectory)
        #expect(FileManager.default.fileExists(atPath: directory.path))
        #expect(isScratchDirectory(directory))
        try await redis?.stop()
        redis = nil
        #expect(!FileManager.default.fileExists(atPath: directory.path))
        #expect(!isScratchDirectory(directory))
    }

    @Test(
        "A certificate's directory is removed when the test process exits",
        .enabled(if: findExecutable("openssl") != nil || isContinuousIntegration))
    func certificateDirectoryIsScheduledForRemoval() throws {
        let pair = try LocalServer.selfSignedCertificate()
        let directory = URL(fileURLWithPath: pair.certificate).deletingLastPathComponent()
        #expect(FileManager.default.fileExists(atPath: pair.key))
        #expect(isScratchDirectory(directory))
    }
}
