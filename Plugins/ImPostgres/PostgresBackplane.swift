public import ImBackplane
public import Logging

extension Backplane {
    /// A backplane on PostgreSQL: ``PostgresBus`` on `LISTEN`/`NOTIFY` and ``PostgresPresence``
    /// in tables, sharing one pool (run by the presence).
    public static func postgres(_ configuration: PostgresConfiguration, logger: Logger) throws(BackplaneError)
        -> Backplane
    {
        let database = try PostgresDatabase(configuration: configuration, logger: logger)
        return Backplane(
            bus: PostgresBus(database: database, ownsDatabase: false), presence: PostgresPresence(database: database))
    }
}

extension BackplaneFactory {
    /// Registers `postgres://` and `postgresql://`.
    public mutating func registerPostgres() {
        let maker: Maker = { url, logger in
            try .postgres(try PostgresConfiguration(url: url.absoluteString), logger: logger)
        }
        register(scheme: "postgres", maker)
        register(scheme: "postgresql", maker)
    }
}
