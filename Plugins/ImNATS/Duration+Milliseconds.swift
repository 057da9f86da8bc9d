extension Duration {
    /// This duration in whole milliseconds.
    var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}

extension NATSConfiguration {
    /// The command timeout in milliseconds, at least 1 (what nats.c's calls take).
    var commandTimeoutMilliseconds: Int64 { max(commandTimeout.wholeMilliseconds, 1) }
}
