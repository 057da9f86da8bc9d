public import Foundation
public import ImBackplane

extension Backplane {
    /// A backplane in `directory`: a ``LogBus`` and a ``FilePresence`` sharing it.
    public static func sharedDirectory(_ directory: SharedDirectory, pollInterval: Duration = .milliseconds(2))
        -> Backplane
    {
        Backplane(
            bus: LogBus(directory: directory, pollInterval: pollInterval), presence: FilePresence(directory: directory))
    }
}

extension BackplaneFactory {
    /// Registers `shared-dir://`: `shared-dir:///absolute/path[?poll=<milliseconds>]`. The
    /// directory is created if it is missing (at start only: a directory that disappears later
    /// takes the backplane down until it is back).
    public mutating func registerSharedDirectory() {
        register(scheme: "shared-dir") { url, _ in
            let directory = try SharedDirectory(url: url)
            try directory.create()
            let poll =
                URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems?
                .first { $0.name == "poll" }?.value.flatMap(Int.init) ?? 2
            guard (1...1000).contains(poll) else { throw SharedDirectoryError.invalidURL(url.absoluteString) }
            return .sharedDirectory(directory, pollInterval: .milliseconds(poll))
        }
    }
}

extension SharedDirectory {
    /// The directory a `shared-dir:///path` URL names.
    public init(url: URL) throws(SharedDirectoryError) {
        guard url.scheme?.lowercased() == "shared-dir", url.host(percentEncoded: false)?.isEmpty ?? true,
            url.path.hasPrefix("/"), url.path.count > 1
        else { throw .invalidURL(url.absoluteString) }
        self.init(path: url.path)
    }
}

/// Why a `shared-dir://` URL was refused.
public enum SharedDirectoryError: Error, CustomStringConvertible {
    /// Not `shared-dir:///absolute/path[?poll=1…1000]`.
    case invalidURL(String)

    public var description: String {
        switch self {
        case .invalidURL(let url):
            "backplane URL '\(url)' is not shared-dir:///absolute/path[?poll=<1 to 1000 ms>]"
        }
    }
}
