#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Foundation
import ImBackplane
import NIOPosix

/// The directory a `shared-dir://` backplane lives in: the bus log and the presence state of
/// every node and helper on one machine that names the same directory.
///
/// The directory is the backend. While it is missing (deleted, unmounted) the backplane is down:
/// operations throw ``BackplaneError/unavailable(_:)``. Recreating it is a restart without
/// persistence: the bus goes on with a new log, presence starts empty.
public struct SharedDirectory: Sendable {
    /// The directory's path.
    public let path: String

    /// The directory at `path` (not created here: see ``create()``).
    public init(path: String) {
        self.path = path
    }

    var busLog: String { path + "/bus.log" }
    var presenceState: String { path + "/presence.json" }
    var presenceLock: String { path + "/presence.lock" }

    /// Creates the directory if it does not exist.
    public func create() throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Whether the directory exists now.
    var exists: Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// Runs blocking file work on NIO's thread pool, with every failure as a `BackplaneError`.
    static func io<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws(BackplaneError) -> T {
        do {
            return try await NIOThreadPool.singleton.runIfActive { try work() }
        } catch let error as BackplaneError {
            throw error
        } catch {
            throw .unavailable("shared directory: \(error)")
        }
    }
}

/// A file opened for the backplane, closed when dropped.
final class OpenFile: @unchecked Sendable {
    // Sendable: `descriptor` is immutable; the kernel serialises calls on it.
    let descriptor: Int32

    /// Opens `path` with `flags` (creating it with mode 0644 when `flags` has `O_CREAT`).
    init(_ path: String, flags: Int32) throws(BackplaneError) {
        let descriptor = open(path, flags | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .unavailable("cannot open \(path): \(String(cString: strerror(errno)))") }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Holds an exclusive `flock` on the file while `body` runs (other processes, and other open
    /// descriptions of the file in this process, wait).
    func withExclusiveLock<T>(_ body: () throws -> T) throws -> T {
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw BackplaneError.unavailable("flock: \(String(cString: strerror(errno)))") }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    /// The file's size and inode.
    func status() throws(BackplaneError) -> (size: Int, inode: UInt64) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .unavailable("fstat: \(String(cString: strerror(errno)))") }
        return (Int(info.st_size), UInt64(info.st_ino))
    }

    /// Writes all of `bytes` at the end (the file is opened with `O_APPEND`).
    func append(_ bytes: [UInt8]) throws(BackplaneError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                write(descriptor, raw.baseAddress.map { $0 + offset }, bytes.count - offset)
            }
            if written < 0 {
                guard errno == EINTR else { throw .unavailable("write: \(String(cString: strerror(errno)))") }
                continue
            }
            offset += written
        }
    }

    /// Reads up to `count` bytes at `offset`.
    func read(at offset: Int, count: Int) throws(BackplaneError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = bytes.withUnsafeMutableBytes { raw in pread(descriptor, raw.baseAddress, count, off_t(offset)) }
        guard got >= 0 else { throw .unavailable("pread: \(String(cString: strerror(errno)))") }
        bytes.removeLast(count - got)
        return bytes
    }

    /// Empties the file.
    func truncate() throws(BackplaneError) {
        guard ftruncate(descriptor, 0) == 0 else {
            throw .unavailable("ftruncate: \(String(cString: strerror(errno)))")
        }
    }
}
