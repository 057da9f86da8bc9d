public import ImCore
import Synchronization

/// The stock `imserver` command line as a library, so a package that adds backplane plugins
/// can ship the same server with its own schemes in a few lines:
///
/// ```swift
/// import ImServerApp
/// import MyBackplane
///
/// @main
/// struct Server {
///     static func main() async {
///         await ImServerMain.run { factory in factory.registerMyBackplane() }
///     }
/// }
/// ```
///
/// Everything else (flags, `IM_*` variables, the configuration file, the server API, the demo)
/// is the stock `imserver`'s; the built-in schemes (`memory://`, `redis://`, `rediss://`, `nats://`, `tls://`) stay.
public enum ImServerMain {
    /// Teaches a ``BackplaneFactory`` more URL schemes.
    public typealias Plugins = @Sendable (inout BackplaneFactory) -> Void

    /// Parses the process's arguments and runs the server until SIGTERM or SIGINT, with the
    /// schemes `plugins` registers on top of the built-in ones; exits the process on a usage or
    /// start-up error, as `imserver` does.
    public static func run(plugins: @escaping Plugins = { _ in }) async {
        extraPlugins.withLock { $0 = plugins }
        await ImServerCommand.main()
    }

    /// The schemes added by ``run(plugins:)`` (set once, before the command runs).
    static let extraPlugins = Mutex<Plugins>({ _ in })
}
