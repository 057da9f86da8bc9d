#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import ImBackplane
import Synchronization

/// A subscriber of a ``LogBus``: reads the log from where it stood when the subscriber was
/// made, and hands on the records of its subjects, in log order.
///
/// Reading is done in passes, one at a time (a lock), by a polling task and by `subscribe`:
/// `subscribe` first reads the log up to its current end with the old subjects, so a record
/// written before `subscribe` returned is never delivered for a subject it added, and every one
/// written after is.
final class LogSubscriber: BusSubscriber {
    private struct Reader {
        var file: OpenFile?
        var inode: UInt64 = 0
        var offset = 0
        var pending: [UInt8] = []
        var subjects: Set<String> = []
        var closed = false
    }

    let messages: BusMessages
    private let continuation: BusMessages.Continuation
    private let reader = Mutex(Reader())
    private let directory: SharedDirectory
    private weak let bus: LogBus?
    private let polling = Mutex<Task<Void, Never>?>(nil)

    private init(bus: LogBus) {
        self.bus = bus
        self.directory = bus.directory
        (messages, continuation) = BusMessages.makeStream(bufferingPolicy: .bufferingNewest(bus.bufferLimit))
    }

    /// A subscriber positioned at the log's current end, polling every `bus.pollInterval`.
    static func start(bus: LogBus) async throws(BackplaneError) -> LogSubscriber {
        let subscriber = LogSubscriber(bus: bus)
        try await SharedDirectory.io { try subscriber.openAtEnd() }
        let interval = bus.pollInterval
        let task = Task { [weak subscriber] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let subscriber else { return }
                // A failed pass (the directory is gone) is tried again at the next poll.
                try? await SharedDirectory.io { try subscriber.readPass() }
            }
        }
        subscriber.polling.withLock { $0 = task }
        return subscriber
    }

    func subscribe(_ subjects: [String]) async throws {
        try await SharedDirectory.io { [self] in
            try? readPass()  // catch up with the old subjects; a missing directory has nothing to read
            reader.withLock { $0.subjects.formUnion(subjects) }
        }
    }

    func unsubscribe(_ subjects: [String]) async throws {
        reader.withLock { $0.subjects.subtract(subjects) }
    }

    func close() async {
        polling.withLock { $0 }?.cancel()
        reader.withLock { reader in
            reader.closed = true
            reader.file = nil
        }
        continuation.finish()
        bus?.closed(self)
    }

    // MARK: Reading (blocking; on the thread pool)

    /// Opens the current log at its end: what is there was published before this subscriber.
    private func openAtEnd() throws {
        guard let (file, inode, size) = try currentLog() else { return }
        reader.withLock { reader in
            reader.file = file
            reader.inode = inode
            reader.offset = size
        }
    }

    /// The log file at the directory's path now, with its inode and size; `nil` when there is none.
    private func currentLog() throws -> (OpenFile, UInt64, Int)? {
        guard directory.exists else { return nil }
        let file = try OpenFile(directory.busLog, flags: O_RDONLY | O_CREAT)
        let (size, inode) = try file.status()
        return (file, inode, size)
    }

    /// Reads everything new, switching to a newer log (rotated, or a recreated directory) once
    /// the current one is read to its end, and hands on the records of subscribed subjects.
    private func readPass() throws {
        try reader.withLock { reader in
            guard !reader.closed else { return }
            while true {
                guard let file = reader.file else {
                    // No log yet (or the directory was gone): everything in the next one is new.
                    guard let (file, inode, _) = try currentLog() else { return }
                    reader.file = file
                    reader.inode = inode
                    reader.offset = 0
                    reader.pending = []
                    continue
                }
                let size = try file.status().size
                if size > reader.offset {
                    let chunk = try file.read(at: reader.offset, count: min(size - reader.offset, 4 << 20))
                    reader.offset += chunk.count
                    reader.pending += chunk
                    let (records, consumed, corrupt) = LogRecord.parse(reader.pending[...])
                    reader.pending = Array(reader.pending.dropFirst(consumed))
                    if corrupt {
                        // Not written by a LogBus (or torn): no record boundary can be found after
                        // it, so the rest of this file is skipped.
                        reader.pending = []
                        reader.offset = size
                    }
                    for record in records where reader.subjects.contains(record.subject) {
                        continuation.yield(record)
                    }
                    continue
                }
                // At the end of this file: go on with a newer one if the path names another file.
                guard let (next, inode, _) = try currentLog(), inode != reader.inode else { return }
                reader.file = next
                reader.inode = inode
                reader.offset = 0
                reader.pending = []
            }
        }
    }
}

// Sendable: the reader state is behind a Mutex, the polling task handle too; the rest is
// immutable or thread-safe (the stream's continuation).
extension LogSubscriber: @unchecked Sendable {}
