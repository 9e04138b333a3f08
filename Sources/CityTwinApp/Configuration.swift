import Foundation
import Logging
import Twin

/// Everything `citytwin serve` can be told; the CLI fills it from flags, then environment, then the configuration file, then defaults.
public struct Configuration: Sendable {
    /// `CITYTWIN_HOST`: address to listen on.
    public var host = "127.0.0.1"
    /// `CITYTWIN_PORT`: port to listen on (0 picks a free one).
    public var port = 1026
    /// `CITYTWIN_DATA_DIR`: where the embedded SQLite database lives.
    public var dataDirectory = "./data"
    /// `CITYTWIN_DATABASE_URL`: `postgres://user:password@host:port/db` or `sqlite:///path`; default: SQLite in the data directory.
    public var databaseURL: String?
    /// `CITYTWIN_LOG_LEVEL`
    public var logLevel: Logger.Level = .info
    /// `CITYTWIN_BODY_LIMIT`: the largest request body accepted, in bytes.
    public var bodyLimit = 1 << 20
    /// `CITYTWIN_MAX_LIMIT`: the largest `limit` a query may ask for.
    public var maximumQueryLimit = 1000
    /// `CITYTWIN_ALLOW_ANONYMOUS_WRITES`: let callers without credentials write (for a laptop demo only).
    public var allowAnonymousWrites = false
    /// `CITYTWIN_JWT_SECRET`: HMAC secret that signs bearer tokens (HS256); none: bearer tokens are refused.
    public var jwtSecret: String?
    /// `CITYTWIN_PUBLIC_URL`: the base URL clients reach the server at (for hosted @context URLs).
    public var publicURL: String?

    /// `CITYTWIN_HISTORY_RETENTION_DAYS`: history instances observed longer ago are deleted hourly; 0 keeps all.
    public var historyRetentionDays = 0
    /// `CITYTWIN_KEEP_HISTORY_OF_DELETED_ENTITIES`: deleting an entity leaves its history (default: it goes too).
    public var keepHistoryOfDeletedEntities = false
    /// `CITYTWIN_TEMPORAL_INSTANCE_LIMIT`: the most instances of one attribute a temporal answer holds.
    public var temporalInstanceLimit = 1000
    /// `CITYTWIN_CACHED_ENTITIES`: on SQLite, how many recently written entities are kept in memory (0: none).
    public var cachedEntities = SQLEntityStore.defaultCachedEntities
    /// `CITYTWIN_MQTT_BROKER`: `mqtt://host:port` or `mqtts://host:port` (TLS) of the broker devices publish
    /// measurements to; none: no MQTT intake.
    public var mqttBroker: String?
    /// `CITYTWIN_MQTT_CA_FILE`: CA certificates (PEM) that `mqtts://` brokers' certificates must chain to, for
    /// the intake and for notifications; none: the system's CAs.
    public var mqttCAFile: String?
    /// `CITYTWIN_DEVICE_REPORT_INTERVAL`: milliseconds; a Device entity takes `dateLastValueReported` at most
    /// this often (the latest report when the interval is over); 0: with every measurement.
    public var deviceReportInterval = 1000

    public init() {}

    public var databaseURLOrDefault: String {
        databaseURL ?? "sqlite://" + URL(fileURLWithPath: dataDirectory).appendingPathComponent("citytwin.sqlite").path
    }
}
