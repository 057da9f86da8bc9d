import Foundation
import Synchronization
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Lines read from a file descriptor by a dedicated thread, handed to async code.
///
/// Workers and their parent talk over pipes, one message a line; a blocking thread per
/// pipe keeps that independent of the event loops that carry the load.
final class LineReader: Sendable {
    private struct State {
        var lines: [String] = []
        var head = 0
        var waiter: CheckedContinuation<String?, Never>?
        var finished = false
    }

    private let state = Mutex(State())

    /// Starts reading `descriptor` until end of file.
    init(descriptor: Int32) {
        let thread = Thread { [self] in readAll(descriptor) }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// The next line, or `nil` at end of file.
    func next() async -> String? {
        await withCheckedContinuation { continuation in
            let ready: String?? = state.withLock { state in
                if state.head < state.lines.count {
                    defer {
                        state.head += 1
                        if state.head > 1024 {
                            state.lines.removeFirst(state.head)
                            state.head = 0
                        }
                    }
                    return .some(state.lines[state.head])
                }
                if state.finished { return .some(nil) }
                state.waiter = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    private func push(_ line: String?) {
        let waiter: CheckedContinuation<String?, Never>? = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                if line == nil { state.finished = true }
                return waiter
            }
            if let line { state.lines.append(line) } else { state.finished = true }
            return nil
        }
        waiter?.resume(returning: line)
    }

    private func readAll(_ descriptor: Int32) {
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            var start = 0
            for index in 0..<count where buffer[index] == UInt8(ascii: "\n") {
                pending.append(contentsOf: buffer[start..<index])
                push(String(decoding: pending, as: UTF8.self))
                pending.removeAll(keepingCapacity: true)
                start = index + 1
            }
            pending.append(contentsOf: buffer[start..<count])
        }
        if !pending.isEmpty { push(String(decoding: pending, as: UTF8.self)) }
        push(nil)
    }
}

/// Writes whole lines to a file descriptor, one writer at a time.
final class LineWriter: Sendable {
    private let descriptor: Int32
    private let lock = Mutex(())

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// Writes `line` and a newline; returns `false` when the other end is gone.
    @discardableResult
    func write(_ line: String) -> Bool {
        let bytes = Array((line + "\n").utf8)
        return lock.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { systemWrite(descriptor, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return false }
                offset += written
            }
            return true
        }
    }
}

/// Progress and diagnostics go to standard error; standard output holds only the result.
enum Console {
    private static let errorOutput = LineWriter(descriptor: 2)
    private static let standardOutput = LineWriter(descriptor: 1)

    /// Writes a line to standard error.
    static func log(_ line: String) {
        errorOutput.write(line)
    }

    /// Writes a line to standard output.
    static func output(_ line: String) {
        standardOutput.write(line)
    }
}

/// `write(2)`, named apart from ``LineWriter/write(_:)``.
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer?, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}
