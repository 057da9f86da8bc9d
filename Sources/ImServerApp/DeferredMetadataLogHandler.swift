import Logging

/// `StreamLogHandler`'s output, with the logger's metadata kept as set and formatted only when
/// a line is written.
///
/// `StreamLogHandler` formats its metadata again on every change, and Hummingbird sets a
/// request id on the logger of every request: on this machine that was 5 % of an API request
/// that logs nothing. Here setting metadata stores it; a line that is written hands it to the
/// stream handler as the line's metadata, which formats it as before (sorted `key=value`).
struct DeferredMetadataLogHandler: LogHandler {
    private var stream: StreamLogHandler
    /// The logger's metadata, as set.
    var metadata: Logger.Metadata = [:]

    /// A handler writing through `stream`, which carries the label, the level and the output.
    init(_ stream: StreamLogHandler) {
        self.stream = stream
    }

    var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { stream.metadataProvider }
        set { stream.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        guard !metadata.isEmpty else {
            stream.log(event: event)
            return
        }
        var event = event
        // A line's own metadata wins over the logger's, as in StreamLogHandler.
        event.metadata = metadata.merging(event.metadata ?? [:]) { _, line in line }
        stream.log(event: event)
    }
}
