public import ImBackplane
public import Logging
public import NIOCore
public import NIOPosix

extension Backplane {
    /// A backplane on Redis: ``RedisBus`` and ``RedisPresence`` sharing one connection pool.
    public static func redis(
        _ configuration: RedisConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) -> Backplane {
        let bus = RedisBus(configuration: configuration, group: group, logger: logger)
        return Backplane(bus: bus, presence: RedisPresence(client: bus.client))
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
