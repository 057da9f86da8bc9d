public import ImBackplane
public import Logging
public import NIOCore
public import NIOPosix

extension Backplane {
    /// A backplane on Redis: ``RedisBus`` and ``RedisPresence`` sharing one connection pool;
    /// the presence is also the backplane's ``NodeRouter`` (one script finds and publishes).
    public static func redis(
        _ configuration: RedisConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) -> Backplane {
        let bus = RedisBus(configuration: configuration, group: group, logger: logger)
        let presence = RedisPresence(client: bus.client)
        return Backplane(bus: bus, presence: presence, router: presence)
    }
}

extension BackplaneFactory {
    /// Registers `redis://` and `rediss://`.
    public mutating func registerRedis(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        let maker: Maker = { url, logger in
            .redis(try RedisConfiguration(url: url), group: group, logger: logger)
        }
        register(scheme: "redis", maker)
        register(scheme: "rediss", maker)
    }
}
