import CNATS
import ImBackplane

extension NATSClient {
    /// Runs `body` with a nats.c watcher (`kvWatcher *`) of the keys matching `keys` in
    /// `bucket` (`>` for all), destroyed afterwards. The watcher first delivers every matching
    /// key's latest entry, then a `nil` entry, then changes as they come.
    func withWatcher<T>(
        bucket: String, keys: String, ignoreDeletes: Bool, keysOnly: Bool,
        _ body: (OpaquePointer) throws(BackplaneError) -> T
    ) throws(BackplaneError) -> T {
        try withJetStream { context throws(BackplaneError) -> T in
            var store: OpaquePointer?
            try Self.check(js_KeyValue(&store, context, bucket), "opening the bucket \(bucket)")
            guard let store else { throw BackplaneError.unavailable("nats: no bucket \(bucket)") }
            defer { kvStore_Destroy(store) }
            var options = kvWatchOptions()
            kvWatchOptions_Init(&options)
            options.IgnoreDeletes = ignoreDeletes
            options.MetaOnly = keysOnly
            options.Timeout = configuration.commandTimeoutMilliseconds
            var watcher: OpaquePointer?
            try Self.check(kvStore_Watch(&watcher, store, keys, &options), "watching \(bucket)")
            guard let watcher else { throw BackplaneError.unavailable("nats: no watcher of \(bucket)") }
            defer { kvWatcher_Destroy(watcher) }
            return try body(watcher)
        }
    }

    /// The value of a `kvEntry *`, copied.
    static func value(of entry: OpaquePointer) -> [UInt8] {
        let length = Int(kvEntry_ValueLen(entry))
        guard length > 0, let bytes = kvEntry_Value(entry) else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: length))
    }
}
