import NIOCore
import NIOSSL

/// Which server certificates the benchmark's clients accept on `wss://` and `https://`:
/// passed to worker processes in the fleet spec.
struct TLSTrust: Sendable, Codable, Hashable {
    /// A PEM file of CA certificates to trust instead of the system's.
    var caFile: String?
    /// Accept any certificate for any host, unchecked: only for a local test server with a
    /// self-signed certificate.
    var insecure = false
}

/// The client side of TLS: one context per process, shared by every connection (it holds
/// the trusted certificates; each connection gets its own handler from it).
///
/// Every handshake is a full one (the client keeps no session cache), as for a fleet of
/// browsers each connecting once.
struct ClientTLS: Sendable {
    /// The context handlers are made from.
    let context: NIOSSLContext

    /// A context for `trust`: the system's CA certificates, those of `trust.caFile`, or none
    /// checked with `trust.insecure`.
    init(_ trust: TLSTrust) throws(BenchError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch (trust.caFile, trust.insecure) {
        case (_?, true):
            throw .invalidArgument("--ca and --insecure exclude each other")
        case (let path?, false):
            let certificates: [NIOSSLCertificate]
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(path)
            } catch {
                throw .invalidArgument("--ca \(path): not a readable PEM file of certificates (\(error))")
            }
            guard !certificates.isEmpty else { throw .invalidArgument("--ca \(path): no certificate in the file") }
            configuration.trustRoots = .certificates(certificates)
        case (nil, true):
            configuration.certificateVerification = .none
        case (nil, false):
            break
        }
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw .invalidArgument("TLS client context: \(error)")
        }
    }

    /// A handler for a connection to `host`: the name goes into SNI and is checked against
    /// the certificate; an IP address (no SNI allowed) is checked against the certificate's
    /// IP addresses instead.
    func makeHandler(host: String) throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: context, serverHostname: Self.isIPAddress(host) ? nil : host)
    }

    /// Whether `host` is an IPv4 or IPv6 literal.
    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}
