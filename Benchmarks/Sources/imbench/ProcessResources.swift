#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Foundation

/// The few operating-system resources a benchmark run reads or changes.
enum ProcessResources {
    /// Raises the soft limit on open files to the hard limit; returns the soft limit now in force.
    ///
    /// Every client socket is a file descriptor, and the hard limit on this machine (20,000)
    /// is well above the usual soft default (1,024).
    @discardableResult
    static func raiseOpenFileLimit() -> Int {
        var limit = rlimit()
        #if canImport(Glibc)
            let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
            let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur > rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// Ignores SIGPIPE, so a worker or server that went away is an error, not a crash.
    static func ignoreBrokenPipes() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// The resident set size of process `pid` in KiB (`VmRSS` in `/proc/<pid>/status`), or `nil`.
    static func residentKiB(of pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let digits = line.dropFirst("VmRSS:".count).filter(\.isNumber)
            return Int(digits)
        }
        return nil
    }

    /// The summed resident set size of `pids` in KiB; `nil` when any cannot be read or `pids` is empty.
    static func residentKiB(of pids: [Int32]) -> Int? {
        guard !pids.isEmpty else { return nil }
        var total = 0
        for pid in pids {
            guard let kib = residentKiB(of: pid) else { return nil }
            total += kib
        }
        return total
    }

    /// The path to run this executable again (for worker processes).
    static var executablePath: String {
        let first = CommandLine.arguments[0]
        if first.contains("/") { return first }
        #if os(Linux)
            if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
                return resolved
            }
        #endif
        return first
    }
}
