import Foundation

/// The local IPv4 addresses client sockets are bound to, used round-robin.
///
/// One address offers about 28,000 ephemeral ports toward one server address; spreading the
/// sockets over `127.0.0.2-127.0.0.30` lifts that limit. Only loopback addresses
/// (`127.0.0.0/8`) are accepted: this tool is for measuring servers on this machine.
struct SourceAddresses: Sendable, Codable, Equatable {
    /// The addresses, in order; empty means "let the kernel pick".
    let addresses: [String]

    /// No binding: the kernel picks the source address and port.
    static let none = SourceAddresses(addresses: [])

    init(addresses: [String]) {
        self.addresses = addresses
    }

    /// Parses a comma-separated list of addresses and ranges, e.g. `127.0.0.2-127.0.0.30,127.0.1.1`.
    init(parsing text: String) throws(BenchError) {
        var result: [String] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            let bounds = part.split(separator: "-", maxSplits: 1).map(String.init)
            guard let low = Self.loopbackValue(bounds[0]) else {
                throw .invalidArgument("source address '\(bounds[0])' is not an IPv4 loopback address (127.x.x.x)")
            }
            var high = low
            if bounds.count == 2 {
                guard let value = Self.loopbackValue(bounds[1]), value >= low else {
                    throw .invalidArgument("source range '\(part)' must be two loopback addresses, low-high")
                }
                high = value
            }
            guard high - low < 1 << 16 else { throw .invalidArgument("source range '\(part)' is too large") }
            for value in low...high { result.append(Self.format(value)) }
        }
        self.addresses = result
    }

    /// The address for the `index`-th socket, or `nil` when none are configured.
    func address(for index: Int) -> String? {
        addresses.isEmpty ? nil : addresses[index % addresses.count]
    }

    private static func loopbackValue(_ text: String) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false).compactMap { UInt8($0) }
        guard octets.count == 4, octets[0] == 127 else { return nil }
        return octets.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    private static func format(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }
}
