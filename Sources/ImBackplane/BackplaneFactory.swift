public import Foundation
public import Logging

/// Makes a ``Backplane`` from a URL whose scheme names the plugin.
///
/// `memory://` is built in; plugins add themselves with ``register(scheme:_:)`` before the
/// server starts (the `imserver` executable registers every plugin it links).
public struct BackplaneFactory: Sendable {
    /// Builds a backplane from its URL.
    public typealias Maker = @Sendable (URL, Logger) async throws -> Backplane

    private var makers: [String: Maker]

    /// A factory that knows `memory://`.
    public init() {
        makers = ["memory": { _, _ in .memory() }]
    }

    /// Teaches the factory a URL scheme (lower case, without `://`).
    public mutating func register(scheme: String, _ maker: @escaping Maker) {
        makers[scheme.lowercased()] = maker
    }

    /// The schemes this factory can build, sorted.
    public var schemes: [String] { makers.keys.sorted() }

    /// Builds the backplane `url` names, or throws ``BackplaneConfigurationError``.
    public func makeBackplane(url: String, logger: Logger) async throws -> Backplane {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased() else {
            throw BackplaneConfigurationError.invalidURL(url)
        }
        guard let maker = makers[scheme] else {
            throw BackplaneConfigurationError.unknownScheme(scheme, known: schemes)
        }
        return try await maker(parsed, logger)
    }
}

/// Why a backplane URL could not be turned into a backplane.
public enum BackplaneConfigurationError: Error, Equatable, CustomStringConvertible {
    /// The URL could not be parsed or has no scheme.
    case invalidURL(String)
    /// No plugin is registered for the scheme.
    case unknownScheme(String, known: [String])

    public var description: String {
        switch self {
        case .invalidURL(let url):
            "backplane URL '\(url)' is not a URL with a scheme (for example memory:// or redis://127.0.0.1:6379)"
        case .unknownScheme(let scheme, let known):
            "unknown backplane scheme '\(scheme)://'; known schemes: "
                + known.map { "\($0)://" }.joined(separator: ", ")
        }
    }
}
