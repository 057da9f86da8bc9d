import HummingbirdCore
import ImCore
import ImServer
import Logging
import NIOCore

/// An HTTP child channel whose requests are handled by a task that prefers the connection's own
/// event loop (``EventLoopTaskExecutor``).
///
/// A send's steps — reading the request, the presence lookup, the publish, writing the answer —
/// then stay on one thread when the backplane's connection lives on the same loop (the Redis
/// plugin picks it so). Without the preference each step resumed on the global pool and the
/// answer hopped back to the loop: about five thread wake-ups per request, most of a single
/// send's CPU at a few thousand requests a second.
struct LoopAffineChannel<Base: ServerChildChannel>: ServerChildChannel {
    let base: Base

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Base.Value> {
        base.setup(channel: channel, logger: logger)
    }

    func handle(value: Base.Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await base.handle(value: value, logger: logger)
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1, plain or over TLS, each connection's requests handled on its own event loop.
    static func loopAffineHTTP1(tls: ReloadableTLS?) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            let plain = HTTP1Channel(responder: responder)
            guard let tls else { return LoopAffineChannel(base: plain) }
            return LoopAffineChannel(base: TLSChannel(base: plain, tls: tls))
        }
    }
}
