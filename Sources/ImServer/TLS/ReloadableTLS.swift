public import NIOSSL
import Synchronization

/// A server TLS context made from a PEM certificate chain and key, made again from the same
/// files on ``reload()`` (the node calls it on `SIGHUP`).
///
/// Each new connection takes the context current when it is accepted; connections already
/// open keep the one they started with, so a reload drops nothing. A reload that fails (a file
/// missing or half written, a key that does not match) keeps the current context and throws.
public final class ReloadableTLS: Sendable {
    /// The certificate chain's file (PEM, the node's certificate first).
    public let certificatePath: String
    /// The private key's file (PEM).
    public let keyPath: String
    /// Which setting named the files, for messages (`public.tls`, `api.tls`).
    public let setting: String
    private let context: Mutex<NIOSSLContext>

    /// Reads the files; throws ``TLSSetupError`` when they cannot serve TLS.
    public init(certificatePath: String, keyPath: String, setting: String) throws(TLSSetupError) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.setting = setting
        context = Mutex(try Self.makeContext(certificatePath: certificatePath, keyPath: keyPath, setting: setting))
    }

    /// The context for a connection accepted now.
    public var current: NIOSSLContext { context.withLock { $0 } }

    /// Reads the files again and uses them for new connections; on failure keeps the current
    /// context and throws.
    public func reload() throws(TLSSetupError) {
        let fresh = try Self.makeContext(certificatePath: certificatePath, keyPath: keyPath, setting: setting)
        context.withLock { $0 = fresh }
    }

    private static func makeContext(certificatePath: String, keyPath: String, setting: String) throws(TLSSetupError)
        -> NIOSSLContext
    {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw .unreadable(setting: "\(setting).certificate", path: certificatePath, detail: "\(error)")
        }
        guard !chain.isEmpty else {
            throw .unreadable(
                setting: "\(setting).certificate", path: certificatePath, detail: "no PEM certificate in it")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw .unreadable(setting: "\(setting).key", path: keyPath, detail: "\(error)")
        }
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            // BoringSSL refuses a key that is not the certificate's when the context is made.
            throw .mismatch(certificate: certificatePath, key: keyPath, detail: "\(error)")
        }
    }
}

/// Why TLS files cannot serve: the node does not start, or a reload keeps the old files.
public enum TLSSetupError: Error, Equatable, CustomStringConvertible {
    /// A file is missing, unreadable or not PEM.
    case unreadable(setting: String, path: String, detail: String)
    /// The key is not the certificate's, or BoringSSL refused the pair.
    case mismatch(certificate: String, key: String, detail: String)
    /// Only one of a certificate and a key is configured.
    case incomplete(setting: String)

    public var description: String {
        switch self {
        case .unreadable(let setting, let path, let detail):
            "\(setting): cannot read a PEM \(setting.hasSuffix(".key") ? "private key" : "certificate") from \(path) (\(detail))"
        case .mismatch(let certificate, let key, let detail):
            "the key \(key) does not belong to the certificate \(certificate), or TLS refused them (\(detail))"
        case .incomplete(let setting):
            "\(setting).certificate and \(setting).key go together: set both (PEM files) or neither"
        }
    }
}
