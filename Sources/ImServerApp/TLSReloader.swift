import ImServer
import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads the node's TLS certificates and keys from their files on `SIGHUP`.
///
/// New connections get the new certificate; open ones keep theirs. A reload that fails (a
/// missing or half-written file, a key that does not match) is logged and the certificate in
/// use stays.
struct TLSReloader: Service {
    let contexts: [ReloadableTLS]
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals { reload() }
        }
    }

    /// Reloads every context once.
    func reload() {
        for tls in contexts {
            do {
                try tls.reload()
                logger.notice(
                    "TLS certificate reloaded",
                    metadata: ["setting": "\(tls.setting)", "certificate": "\(tls.certificatePath)"])
            } catch {
                logger.error(
                    "TLS reload failed; the certificate in use stays",
                    metadata: ["setting": "\(tls.setting)", "error": "\(error)"])
            }
        }
    }
}
