import HummingbirdCore
import ImCore
import ImServer
import Logging
import NIOCore
import NIOHTTPTypesHTTP1

/// An HTTP child channel whose requests are handled by a task that prefers the connection's own
/// event loop (``EventLoopTaskExecutor``), and whose plain single sends and connect URLs are
/// answered on that loop before they reach the task (``APIFastLane``), when `fastLane` is given.
///
/// A send's steps — reading the request, the presence lookup, the publish, writing the answer —
/// then stay on one thread when the backplane's connection lives on the same loop (the Redis
/// plugin picks it so). Without the preference each step resumed on the global pool and the
/// answer hopped back to the loop: about five thread wake-ups per request, most of a single
/// send's CPU at a few thousand requests a second.
struct LoopAffineChannel<Base: ServerChildChannel>: ServerChildChannel {
    let base: Base
    let fastLane: APIFastLane.Settings?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Base.Value> {
        base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            guard let fastLane else { return value }
            // Right after the HTTP/1 decoder, before the conversion to HTTP types.
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(
                APIFastLane(settings: fastLane, logger: logger),
                position: .before(try pipeline.handler(type: HTTP1ToHTTPServerCodec.self)))
            return value
        }
    }

    func handle(value: Base.Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await base.handle(value: value, logger: logger)
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1, plain or over TLS, each connection's requests handled on its own event loop, its
    /// plain single sends and connect URLs by an ``APIFastLane`` when `fastLane` is given.
    static func loopAffineHTTP1(tls: ReloadableTLS?, fastLane: APIFastLane.Settings?) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            let plain = HTTP1Channel(responder: responder)
            guard let tls else { return LoopAffineChannel(base: plain, fastLane: fastLane) }
            return LoopAffineChannel(base: TLSChannel(base: plain, tls: tls), fastLane: fastLane)
        }
    }
}
