import AsyncHTTPClient
import CityKit
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MQTT
import Metrics
import Prometheus
import ServiceLifecycle
import Storage
import Synchronization
import Sensing
import Twin

/// All the migrations of all modules, in order.
public let allMigrations: [Migration] = TwinMigrations.all + SensingMigrations.all + APIKeyStore.migrations

/// The database as a `Service`, so its pool runs and closes with the application.
struct DatabaseService: Service {
    let database: Database
    func run() async throws {
        // The pool runs until graceful shutdown, then closes.
        await cancelWhenGracefulShutdown {
            await database.run()
        }
        await database.close()
    }
}

/// Prometheus registry shared by the process: metrics are bootstrapped once.
public enum AppMetrics {
    public static let registry = PrometheusCollectorRegistry()
    private static let bootstrapped = Mutex(false)

    static func bootstrap() {
        let first = bootstrapped.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        if first { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry)) }
    }
}

/// Opens the database, migrates it, and builds the application with every route and service.
public func buildApplication(_ configuration: Configuration, logger: Logger? = nil) async throws -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "citytwin")
    logger.logLevel = configuration.logLevel
    AppMetrics.bootstrap()
    let backend = try Backend.parse(configuration.databaseURLOrDefault)
    if case .sqlite(let path) = backend {
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
    }
    let database = try await Database.open(backend, logger: logger)
    let ready = StartGate()
    let (router, services) = try await makeRouter(configuration, database: database, ready: ready, logger: logger)
    var app = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "CityTwin"),
        logger: logger)
    app.addServices(DatabaseService(database: database))
    app.addServices(services)
    if configuration.historyRetentionDays > 0 {
        app.addServices(HistoryRetentionService(history: try await SQLHistoryStore.open(database), days: configuration.historyRetentionDays, logger: logger))
    }
    // The pool runs as a service; the schema is brought up to date before the server accepts requests.
    let startLogger = logger
    app.beforeServerStarts {
        try await Migrator(allMigrations).run(on: database)
        ready.open()
        startLogger.info("storage ready", metadata: ["database": "\(backend)"])
    }
    return app
}

/// The router with every route, and the services that work behind it (notification delivery, MQTT intake).
func makeRouter(
    _ configuration: Configuration, database: Database, ready: StartGate, logger: Logger
) async throws -> (Router<AppRequestContext>, [any Service]) {
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: LogRequestsMiddleware(.debug))
    router.get("health") { _, _ in
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(string: #"{"status":"ok"}"#)))
    }
    router.get("metrics") { _, _ in
        var buffer = [UInt8]()
        AppMetrics.registry.emit(into: &buffer)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: .init(bytes: buffer)))
    }
    let tokens: TokenVerifier? = if let secret = configuration.jwtSecret { await TokenVerifier(secret: secret) } else { nil }
    let keys = APIKeyStore(database: database)
    let publicURL = configuration.publicURL ?? "http://\(configuration.host):\(configuration.port)"
    let contextStore = SQLContextStore(database: database)
    let contexts = ContextResolver(
        store: contextStore, fetcher: HTTPContextFetcher(),
        hostedBase: publicURL + "/ngsi-ld/v1/jsonldContexts/", logger: logger)
    // This copy's name in the outbox's claims.
    let copy = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8).lowercased())"
    let matcher = SubscriptionMatcher(contexts: contexts, copy: copy, logger: logger)
    let deliverer = NotificationDeliverer(outbox: NotificationOutbox(database: database, copy: copy), sender: NotificationSenders(mqtt: MQTTNotificationSender(caFile: configuration.mqttCAFile)), logger: logger)
    matcher.deliver(through: deliverer)
    let store = try await SQLEntityStore.open(
        database, keepHistoryOfDeletedEntities: configuration.keepHistoryOfDeletedEntities, observer: matcher, cachedEntities: configuration.cachedEntities)
    let entities = EntityService(store: store, maximumLimit: configuration.maximumQueryLimit)
    let temporal = TemporalService(history: try await SQLHistoryStore.open(database), entities: entities, instanceLimit: configuration.temporalInstanceLimit)
    let ngsi = router.group("ngsi-ld/v1")
        .add(middleware: ProblemDetailsMiddleware())
        .add(middleware: AuthenticationMiddleware(keys: keys, tokens: tokens))
    EntityController(service: entities, contexts: contexts, bodyLimit: configuration.bodyLimit, allowAnonymousWrites: configuration.allowAnonymousWrites)
        .addRoutes(to: ngsi)
    TemporalController(service: temporal, contexts: contexts, bodyLimit: configuration.bodyLimit, allowAnonymousWrites: configuration.allowAnonymousWrites)
        .addRoutes(to: ngsi)
    DiscoveryController(service: entities, contexts: contexts).addRoutes(to: ngsi)
    SubscriptionController(
        service: SubscriptionService(store: SQLSubscriptionStore(database: database), contexts: contexts, maximumLimit: configuration.maximumQueryLimit),
        contexts: contexts, bodyLimit: configuration.bodyLimit, allowAnonymousWrites: configuration.allowAnonymousWrites
    ).addRoutes(to: ngsi)
    ContextController(resolver: contexts, store: contextStore, bodyLimit: configuration.bodyLimit, allowAnonymousWrites: configuration.allowAnonymousWrites)
        .addRoutes(to: ngsi)
    // Anything else under the NGSI-LD base path is a ProblemDetails 404, not an empty one.
    for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
        ngsi.on("**", method: method) { request, _ -> Response in
            throw NGSIError.notFound("no NGSI-LD resource at \(request.uri.path)")
        }
    }
    // Devices: provisioning and measurements, in the IoT Agent's own format.
    let directory = DeviceDirectory(store: SQLDeviceStore(database: database))
    let reportInterval = Duration.milliseconds(configuration.deviceReportInterval)
    let measurements = MeasurementService(
        directory: directory, entities: entities, reports: configuration.deviceReportInterval > 0 ? DeviceReports(interval: reportInterval) : nil)
    IoTAgentController(
        provisioning: ProvisioningService(store: SQLDeviceStore(database: database), entities: entities, directory: directory),
        measurements: measurements, bodyLimit: configuration.bodyLimit, allowAnonymousWrites: configuration.allowAnonymousWrites
    ).addRoutes(to: router.group("iot").add(middleware: SensingErrorMiddleware()).add(middleware: AuthenticationMiddleware(keys: keys, tokens: tokens)))
    var services: [any Service] = [NotificationService(deliverer: deliverer, matcher: matcher, database: database, ready: ready, logger: logger)]
    if configuration.deviceReportInterval > 0 {
        services.append(DeviceReportsService(measurements: measurements, interval: reportInterval, ready: ready, logger: logger))
    }
    if database.kind == .postgres { services.append(DeviceEventsService(directory: directory, database: database, ready: ready)) }
    if let broker = configuration.mqttBroker.flatMap(MQTTEndpoint.init(url:)) {
        let intake = MQTTIntake(measurements: measurements, broker: broker, caFile: configuration.mqttCAFile, logger: logger)
        services.append(MQTTIntakeService(intake: intake, ready: ready))
    }
    return (router, services)
}
