import Logging
import Synchronization
import Testing

@testable import ImServerApp

/// The log handler writes what `StreamLogHandler` writes, metadata included.
@Suite("Deferred metadata log handler")
struct DeferredMetadataLogHandlerTests {
    @Test("lines match StreamLogHandler's: the logger's metadata sorted, a line's own winning, the level honoured")
    func sameLinesAsStreamLogHandler() {
        let deferred = Captured()
        let plain = Captured()
        var loggers = [
            Logger(label: "api") { _ in DeferredMetadataLogHandler(StreamLogHandler(label: "api", stream: deferred)) },
            Logger(label: "api") { _ in StreamLogHandler(label: "api", stream: plain) },
        ]
        for index in loggers.indices {
            loggers[index].logLevel = .info
            loggers[index][metadataKey: "hb.request.id"] = "42"
            loggers[index][metadataKey: "client"] = "bob"
            loggers[index][metadataKey: "client"] = "alice"
            loggers[index].info("plain line")
            loggers[index].warning("with its own", metadata: ["client": "carol", "reason": "slow"])
            loggers[index].debug("below the level")
            loggers[index][metadataKey: "hb.request.id"] = nil
            loggers[index][metadataKey: "client"] = nil
            loggers[index].error("no metadata")
        }
        let lines = deferred.lines
        #expect(lines.count == 3)
        #expect(lines == plain.lines)
        #expect(lines.first == "info api: client=alice hb.request.id=42 [ImServerAppTests] plain line")
        #expect(lines.dropFirst().first?.contains("client=carol hb.request.id=42 reason=slow") == true)
        #expect(lines.last == "error api: [ImServerAppTests] no metadata")
    }
}

/// An output stream that keeps what is written, lines without their timestamps.
private final class Captured: TextOutputStream, Sendable {
    private let text = Mutex("")

    func write(_ string: String) { text.withLock { $0 += string } }

    /// The lines written, each without its leading timestamp.
    var lines: [String] {
        text.withLock { $0 }.split(separator: "\n").map { line in
            String(line.drop { $0 != " " }.dropFirst())
        }
    }
}
