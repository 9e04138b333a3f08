import ArgumentParser
import CityKit
import CityTwinApp
import Foundation
import Hummingbird
import Logging
import MQTT
import Storage

@main
struct CityTwinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "citytwin",
        abstract: "CityTwin: a city's digital foundation: the NGSI-LD twin and the services built on it.",
        subcommands: [Serve.self, Migrate.self, APIKey.self, Token.self],
        defaultSubcommand: Serve.self)
}

/// Options every command that touches the database shares; each flag falls back to its environment variable,
/// then to the configuration file.
struct StorageOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "Configuration file of `key = value` lines, keys named like the flags (env CITYTWIN_CONFIG; flags and environment take precedence).")
    var configPath: String?

    @Option(name: .customLong("data-dir"), help: "Directory of the embedded SQLite database (env CITYTWIN_DATA_DIR, default ./data).")
    var dataDirectory: String?

    @Option(name: .customLong("database"), help: "Database URL: postgres://user:password@host:port/db or sqlite:///path (env CITYTWIN_DATABASE_URL; default SQLite in the data directory).")
    var databaseURL: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (env CITYTWIN_LOG_LEVEL, default info).")
    var logLevel: String?

    func settings() throws -> Settings { try Settings(configPath: configPath) }

    func apply(to configuration: inout Configuration, _ settings: Settings) throws {
        if let dir = settings.string(dataDirectory, key: "data-dir", env: "CITYTWIN_DATA_DIR") { configuration.dataDirectory = dir }
        if let url = settings.string(databaseURL, key: "database", env: "CITYTWIN_DATABASE_URL"), !url.isEmpty { configuration.databaseURL = url }
        if let level = settings.string(logLevel, key: "log-level", env: "CITYTWIN_LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: level) else { throw ValidationError("unknown log level \(level)") }
            configuration.logLevel = parsed
        }
    }

    func openDatabase() async throws -> (Database, Configuration) {
        var configuration = Configuration()
        try apply(to: &configuration, try settings())
        let backend = try Backend.parse(configuration.databaseURLOrDefault)
        if case .sqlite(let path) = backend {
            try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        }
        return (try await Database.open(backend), configuration)
    }
}

/// Runs `body` with the database open and migrated.
func withDatabase<R: Sendable>(_ options: StorageOptions, _ body: @escaping @Sendable (Database) async throws -> R) async throws -> R {
    let (database, _) = try await options.openDatabase()
    let result = try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await database.run() }
        defer { group.cancelAll() }
        try await Migrator(allMigrations).run(on: database)
        return try await body(database)
    }
    await database.close()
    return result
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start the HTTP server (NGSI-LD under /ngsi-ld/v1, /health, /metrics).")

    @OptionGroup var storage: StorageOptions

    @Option(name: .customLong("host"), help: "Address to listen on (env CITYTWIN_HOST, default 127.0.0.1).")
    var host: String?

    @Option(name: .customLong("port"), help: "Port to listen on, 0 for any free port (env CITYTWIN_PORT, default 1026).")
    var port: Int?

    @Option(name: .customLong("body-limit"), help: "Largest request body in bytes (env CITYTWIN_BODY_LIMIT, default 1048576).")
    var bodyLimit: Int?

    @Option(name: .customLong("max-limit"), help: "Largest page a query may ask for (env CITYTWIN_MAX_LIMIT, default 1000).")
    var maximumLimit: Int?

    @Option(name: .customLong("jwt-secret"), help: "HMAC secret for bearer tokens, HS256 (env CITYTWIN_JWT_SECRET; none: bearer tokens refused).")
    var jwtSecret: String?

    @Option(name: .customLong("public-url"), help: "Base URL clients reach this server at (env CITYTWIN_PUBLIC_URL).")
    var publicURL: String?

    @Option(name: .customLong("history-retention-days"), help: "Delete history observed more than this many days ago, hourly; 0 keeps all (env CITYTWIN_HISTORY_RETENTION_DAYS, default 0).")
    var historyRetentionDays: Int?

    @Flag(name: .customLong("keep-history-of-deleted-entities"), help: "Deleting an entity leaves its history (env CITYTWIN_KEEP_HISTORY_OF_DELETED_ENTITIES=true).")
    var keepHistoryOfDeletedEntities = false

    @Option(name: .customLong("temporal-instance-limit"), help: "Most instances of one attribute in a temporal answer; more gives 206 (env CITYTWIN_TEMPORAL_INSTANCE_LIMIT, default 1000).")
    var temporalInstanceLimit: Int?

    @Option(name: .customLong("cached-entities"), help: "On SQLite, how many recently written entities are kept in memory for their next write or retrieval; 0 for none (env CITYTWIN_CACHED_ENTITIES, default 10000).")
    var cachedEntities: Int?

    @Option(name: .customLong("mqtt-broker"), help: "mqtt://host:port or mqtts://host:port (TLS) of the broker devices publish to (/{apikey}/{device_id}/attrs) (env CITYTWIN_MQTT_BROKER; none: no MQTT intake).")
    var mqttBroker: String?

    @Option(name: .customLong("mqtt-ca-file"), help: "CA certificates (PEM) that mqtts:// brokers' certificates must chain to, for the intake and for notifications (env CITYTWIN_MQTT_CA_FILE; default: the system's CAs).")
    var mqttCAFile: String?

    @Option(name: .customLong("device-report-interval"), help: "Milliseconds: a Device entity takes dateLastValueReported at most this often, the latest report once the interval is over; 0 for every measurement (env CITYTWIN_DEVICE_REPORT_INTERVAL, default 1000).")
    var deviceReportInterval: Int?

    @Flag(name: .customLong("allow-anonymous-writes"), help: "Let callers without credentials write (env CITYTWIN_ALLOW_ANONYMOUS_WRITES=true). For a laptop demo only.")
    var allowAnonymousWrites = false

    func run() async throws {
        let settings = try storage.settings()
        var configuration = Configuration()
        try storage.apply(to: &configuration, settings)
        if let host = settings.string(host, key: "host", env: "CITYTWIN_HOST") { configuration.host = host }
        if let port = try settings.integer(port, key: "port", env: "CITYTWIN_PORT") { configuration.port = port }
        if let limit = try settings.integer(bodyLimit, key: "body-limit", env: "CITYTWIN_BODY_LIMIT") { configuration.bodyLimit = limit }
        if let limit = try settings.integer(maximumLimit, key: "max-limit", env: "CITYTWIN_MAX_LIMIT") { configuration.maximumQueryLimit = limit }
        configuration.jwtSecret = settings.string(jwtSecret, key: "jwt-secret", env: "CITYTWIN_JWT_SECRET")
        configuration.publicURL = settings.string(publicURL, key: "public-url", env: "CITYTWIN_PUBLIC_URL")
        configuration.allowAnonymousWrites = try settings.boolean(allowAnonymousWrites, key: "allow-anonymous-writes", env: "CITYTWIN_ALLOW_ANONYMOUS_WRITES")
        if let days = try settings.integer(historyRetentionDays, key: "history-retention-days", env: "CITYTWIN_HISTORY_RETENTION_DAYS") {
            guard days >= 0 else { throw ValidationError("--history-retention-days must be 0 or more") }
            configuration.historyRetentionDays = days
        }
        configuration.keepHistoryOfDeletedEntities = try settings.boolean(
            keepHistoryOfDeletedEntities, key: "keep-history-of-deleted-entities", env: "CITYTWIN_KEEP_HISTORY_OF_DELETED_ENTITIES")
        if let limit = try settings.integer(temporalInstanceLimit, key: "temporal-instance-limit", env: "CITYTWIN_TEMPORAL_INSTANCE_LIMIT") {
            guard limit > 0 else { throw ValidationError("--temporal-instance-limit must be positive") }
            configuration.temporalInstanceLimit = limit
        }
        if let count = try settings.integer(cachedEntities, key: "cached-entities", env: "CITYTWIN_CACHED_ENTITIES") {
            guard count >= 0 else { throw ValidationError("--cached-entities must be 0 or more") }
            configuration.cachedEntities = count
        }
        if let broker = settings.string(mqttBroker, key: "mqtt-broker", env: "CITYTWIN_MQTT_BROKER") {
            guard MQTTEndpoint(url: broker) != nil else { throw ValidationError("--mqtt-broker must be mqtt://host:port or mqtts://host:port") }
            configuration.mqttBroker = broker
        }
        if let file = settings.string(mqttCAFile, key: "mqtt-ca-file", env: "CITYTWIN_MQTT_CA_FILE") {
            guard FileManager.default.isReadableFile(atPath: file) else { throw ValidationError("--mqtt-ca-file \(file) cannot be read") }
            configuration.mqttCAFile = file
        }
        if let interval = try settings.integer(deviceReportInterval, key: "device-report-interval", env: "CITYTWIN_DEVICE_REPORT_INTERVAL") {
            guard interval >= 0 else { throw ValidationError("--device-report-interval must be 0 or more") }
            configuration.deviceReportInterval = interval
        }
        let app = try await buildApplication(configuration)
        try await app.runService()
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations and exit.")
    @OptionGroup var storage: StorageOptions

    func run() async throws {
        try await withDatabase(storage) { _ in }
        print("migrations applied")
    }
}

struct APIKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apikey", abstract: "Create or revoke API keys for systems and devices.", subcommands: [Create.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key and print it (only its hash is stored).")
        @OptionGroup var storage: StorageOptions
        @Option(help: "A unique name for the key's holder.") var name: String
        @Option(help: "Comma-separated roles: \(Role.allCases.map(\.rawValue).joined(separator: ", ")).") var roles: String = "system"
        @Option(help: "The department the holder acts for.") var department: String?

        func run() async throws {
            let roles = try Role.parseList(self.roles)
            let (name, department) = (self.name, self.department)
            let key = try await withDatabase(storage) { db in
                try await APIKeyStore(database: db).create(name: name, roles: roles, department: department)
            }
            print(key)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke the key of a holder.")
        @OptionGroup var storage: StorageOptions
        @Option(help: "The holder's name.") var name: String

        func run() async throws {
            let name = self.name
            let found = try await withDatabase(storage) { db in try await APIKeyStore(database: db).revoke(name: name) }
            guard found else { throw ValidationError("no key named \(name)") }
        }
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sign a bearer token (HS256) with the server's JWT secret.")
    @Option(help: "Who the token is for.") var subject: String
    @Option(help: "Comma-separated roles.") var roles: String
    @Option(help: "Department.") var department: String?
    @Option(help: "Lifetime in seconds.") var lifetime: Double = 3600
    @Option(name: .customLong("jwt-secret"), help: "The secret (env CITYTWIN_JWT_SECRET, or jwt-secret in the configuration file).") var jwtSecret: String?
    @Option(name: .customLong("config"), help: "Configuration file (env CITYTWIN_CONFIG).") var configPath: String?

    func run() async throws {
        guard let secret = try Settings(configPath: configPath).string(jwtSecret, key: "jwt-secret", env: "CITYTWIN_JWT_SECRET") else {
            throw ValidationError("give --jwt-secret, set CITYTWIN_JWT_SECRET or put jwt-secret in the configuration file")
        }
        print(try await TokenVerifier(secret: secret).sign(subject: subject, roles: try Role.parseList(roles), department: department, lifetime: lifetime))
    }
}
