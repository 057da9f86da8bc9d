import HummingbirdCore
import ImServer
import Logging
import NIOCore
import NIOSSL

/// An HTTP/1 child channel behind TLS whose context is read from a ``ReloadableTLS`` for each
/// connection, so a reload (`SIGHUP`) applies to new connections and drops none.
struct TLSChannel: ServerChildChannel {
    let base: HTTP1Channel
    let tls: ReloadableTLS

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.current))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
