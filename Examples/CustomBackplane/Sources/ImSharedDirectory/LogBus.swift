#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
public import ImBackplane
public import NIOCore
import ServiceLifecycle
import Synchronization

/// A ``Bus`` over an append-only log file in a ``SharedDirectory``: publishing appends records
/// under an exclusive `flock`, subscribers poll the log and hand on the records of their
/// subjects. Every process on the machine that names the directory shares the bus.
///
/// The log is rotated when it grows past ``maximumLogSize`` (renamed to `bus.log.1`, which a
/// subscriber still reading it finishes first), so the disk holds at most twice that. When the
/// directory disappears the bus is down; once it is back, subscribers go on with the new log
/// and keep their subjects.
public final class LogBus: Bus {
    /// Where the log is.
    public let directory: SharedDirectory
    /// How often subscribers look for new records.
    public let pollInterval: Duration
    /// The log size past which it is rotated.
    public let maximumLogSize: Int
    /// Messages one subscriber holds undelivered at most (the oldest are dropped past it).
    public let bufferLimit: Int
    private let subscribers = Mutex<[ObjectIdentifier: LogSubscriber]>([:])

    /// A bus in `directory`.
    public init(
        directory: SharedDirectory, pollInterval: Duration = .milliseconds(2),
        maximumLogSize: Int = 64 * 1024 * 1024, bufferLimit: Int = 1 << 16
    ) {
        self.directory = directory
        self.pollInterval = pollInterval
        self.maximumLogSize = maximumLogSize
        self.bufferLimit = bufferLimit
    }

    public var health: BackplaneHealth {
        directory.exists ? .up : .down("shared directory \(directory.path) is missing")
    }

    public func run() async throws {
        try? await gracefulShutdown()
        let open = subscribers.withLock { Array($0.values) }
        for subscriber in open { await subscriber.close() }
    }

    public func publish(_ message: ByteBuffer, to subject: String) async throws {
        try await publish([BusMessage(subject: subject, payload: message)])
    }

    public func publish(_ batch: [BusMessage]) async throws {
        guard !batch.isEmpty else { return }
        var bytes: [UInt8] = []
        for message in batch { try LogRecord.append(message, to: &bytes) }
        let directory = directory
        let maximumLogSize = maximumLogSize
        let record = bytes
        try await SharedDirectory.io {
            guard directory.exists else {
                throw BackplaneError.unavailable("shared directory \(directory.path) is missing")
            }
            let log = try OpenFile(directory.busLog, flags: O_WRONLY | O_APPEND | O_CREAT)
            try log.withExclusiveLock {
                // Rotated under the lock, so no record is written to a file being renamed away.
                if try log.status().size > maximumLogSize, rename(directory.busLog, directory.busLog + ".1") == 0 {
                    let fresh = try OpenFile(directory.busLog, flags: O_WRONLY | O_APPEND | O_CREAT)
                    try fresh.append(record)
                } else {
                    try log.append(record)
                }
            }
        }
    }

    public func makeSubscriber() async throws -> any BusSubscriber {
        let subscriber = try await LogSubscriber.start(bus: self)
        subscribers.withLock { $0[ObjectIdentifier(subscriber)] = subscriber }
        return subscriber
    }

    /// Forgets a closed subscriber.
    func closed(_ subscriber: LogSubscriber) {
        _ = subscribers.withLock { $0.removeValue(forKey: ObjectIdentifier(subscriber)) }
    }
}
