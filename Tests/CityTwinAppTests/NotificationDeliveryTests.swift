import CityKit
import Foundation
import HTTPTypes
import Logging
import MQTT
import Storage
import Synchronization
import Testing
import Twin

/// Subscriptions end to end below HTTP: what a write queues (in its own transaction), and how the outbox is
/// delivered to real HTTP receivers, on SQLite and on PostgreSQL.
@Suite struct NotificationDeliveryTests {
    let core = CoreContext.context
    static let logger = {
        var logger = Logger(label: "test.notifications")
        logger.logLevel = .warning
        return logger
    }()

    struct Twin: Sendable {
        let database: Database
        let entities: EntityService
        let subscriptions: SubscriptionService
        let matcher: SubscriptionMatcher

        func deliverer(copy: String, policy: RetryPolicy = RetryPolicy(first: .milliseconds(100)), lease: Duration = .seconds(60)) -> NotificationDeliverer {
            NotificationDeliverer(
                outbox: NotificationOutbox(database: database, copy: copy), sender: NotificationSenders(), policy: policy, lease: lease,
                pollInterval: .milliseconds(100), logger: NotificationDeliveryTests.logger)
        }

        /// Runs `deliverer` while `body` runs; what the matcher queues from then on goes to it.
        func delivering(_ deliverer: NotificationDeliverer, releaseEveryClaimFirst: Bool = false, _ body: @Sendable () async throws -> Void) async throws {
            matcher.deliver(through: deliverer)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await deliverer.run(releaseEveryClaimFirst: releaseEveryClaimFirst) }
                defer { group.cancelAll() }
                try await body()
            }
        }

        /// Every row in the outbox, whoever holds it.
        func outbox() async throws -> [OutboxItem] {
            try await NotificationOutbox(database: database, copy: "inspector").pending()
        }
    }

    func withTwin(_ kind: DialectKind, copy: String = "copy-a", lease: Duration = .seconds(60), _ body: @Sendable (Twin) async throws -> Void) async throws {
        try await TestDatabases.with(kind, migrations: TwinMigrations.all) { database, _ in
            let contexts = ContextResolver(store: SQLContextStore(database: database), fetcher: HTTPContextFetcher(), hostedBase: "http://127.0.0.1/", logger: Self.logger)
            let matcher = SubscriptionMatcher(contexts: contexts, copy: copy, lease: lease, logger: Self.logger)
            let entities = EntityService(store: try await SQLEntityStore.open(database, observer: matcher))
            let subscriptions = SubscriptionService(store: SQLSubscriptionStore(database: database), contexts: contexts)
            try await body(Twin(database: database, entities: entities, subscriptions: subscriptions, matcher: matcher))
        }
    }

    static func station(_ n: Int, pm25: Double, at position: (Double, Double)) -> JSON {
        [
            "id": .string("urn:ngsi-ld:AirQualityObserved:\(n)"), "type": "AirQualityObserved",
            "pm25": ["type": "Property", "value": .double(pm25), "unitCode": "GQ"],
            "location": ["type": "GeoProperty", "value": ["type": "Point", "coordinates": [.double(position.0), .double(position.1)]]],
        ]
    }

    static func subscription(_ members: JSON, endpoint: String) -> JSON {
        guard case .object(var o) = members else { return members }
        o["type"] = "Subscription"
        var notification = o["notification"]?.objectValue ?? [:]
        notification["endpoint"] = ["uri": .string(endpoint)]
        o["notification"] = .object(notification)
        return .object(o)
    }

    static let futian: JSON = [[[114.03, 22.50], [114.10, 22.50], [114.10, 22.56], [114.03, 22.56], [114.03, 22.50]]]

    /// A subscription made or deleted between two writes counts from the next write on, also when the
    /// matcher already holds the subscriptions (SQLite reads their revision only after this process changed them).
    @Test(arguments: TestDatabases.kinds)
    func subscriptionChangesCountFromTheNextWrite(_ kind: DialectKind) async throws {
        try await withTwin(kind) { twin in
            // given writes that the matcher has seen with no subscription
            _ = try await twin.entities.create(Self.station(1, pm25: 30, at: (114.05, 22.53)), context: core, tenant: .default)
            _ = try await twin.entities.update("urn:ngsi-ld:AirQualityObserved:1", ["pm25": ["type": "Property", "value": 31]], context: core, tenant: .default)
            #expect(try await twin.outbox().isEmpty)
            // when a subscription is made, then the next update is notified
            let id = try await twin.subscriptions.create(
                Self.subscription(["entities": [["type": "AirQualityObserved"]], "watchedAttributes": ["pm25"]], endpoint: "http://127.0.0.1:9/n"),
                context: core, tenant: .default)
            _ = try await twin.entities.update("urn:ngsi-ld:AirQualityObserved:1", ["pm25": ["type": "Property", "value": 32]], context: core, tenant: .default)
            #expect(try await twin.outbox().map(\.subscriptionID) == [id])
            // when it is deleted, then the next update queues nothing (its queued notification goes with it)
            try await twin.subscriptions.delete(id, tenant: .default)
            _ = try await twin.entities.update("urn:ngsi-ld:AirQualityObserved:1", ["pm25": ["type": "Property", "value": 33]], context: core, tenant: .default)
            #expect(try await twin.outbox().isEmpty)
        }
    }

    /// Triggers, watched attributes, q, geoQ, id patterns and pausing decide what a write queues; each
    /// notification shows what its subscription asked for.
    @Test(arguments: TestDatabases.kinds)
    func writesQueueWhatTheirSubscriptionsSelect(_ kind: DialectKind) async throws {
        try await withTwin(kind) { twin in
            let base = "http://127.0.0.1:9"
            let aqo: JSON = [["type": "AirQualityObserved"]]
            let high = try await twin.subscriptions.create(
                Self.subscription(["entities": aqo, "watchedAttributes": ["pm25"], "q": "pm25>50", "notification": ["attributes": ["pm25"], "showChanges": true]], endpoint: base + "/high"),
                context: core, tenant: .default)
            let life = try await twin.subscriptions.create(
                Self.subscription(["entities": [["type": "AirQualityObserved", "idPattern": ":2$"]], "notificationTrigger": ["entityCreated", "entityDeleted"]], endpoint: base + "/life"),
                context: core, tenant: .default)
            let futian = try await twin.subscriptions.create(
                Self.subscription([
                    "entities": aqo, "geoQ": ["georel": "within", "geometry": "Polygon", "coordinates": Self.futian],
                    "notification": ["format": "keyValues"],
                ], endpoint: base + "/futian"),
                context: core, tenant: .default)
            _ = try await twin.subscriptions.create(Self.subscription(["entities": aqo, "isActive": false], endpoint: base + "/paused"), context: core, tenant: .default)

            _ = try await twin.entities.create(Self.station(1, pm25: 30, at: (114.05, 22.53)), context: core, tenant: .default)
            _ = try await twin.entities.create(Self.station(2, pm25: 60, at: (113.93, 22.52)), context: core, tenant: .default)
            _ = try await twin.entities.update("urn:ngsi-ld:AirQualityObserved:1", ["pm25": ["type": "Property", "value": 70]], context: core, tenant: .default)
            _ = try await twin.entities.append("urn:ngsi-ld:AirQualityObserved:1", ["name": ["type": "Property", "value": "福田监测站"]], noOverwrite: false, context: core, tenant: .default)
            try await twin.entities.delete("urn:ngsi-ld:AirQualityObserved:2", tenant: .default)

            let queued = try await twin.outbox()
            let bySubscription = Dictionary(grouping: queued, by: \.subscriptionID)
            func data(_ id: String) throws -> [[JSON]] { try (bySubscription[id] ?? []).map { try JSONCoding.parse($0.data).arrayValue ?? [] } }

            // Over 50 only: station 2 when created, station 1 when it rose to 70; the name change is not watched.
            let highData = try data(high)
            #expect(highData.map { $0.compactMap { $0["id"]?.stringValue } } == [["urn:ngsi-ld:AirQualityObserved:2"], ["urn:ngsi-ld:AirQualityObserved:1"]])
            #expect(highData.last?.first?["pm25"]?["value"] == 70)
            #expect(highData.last?.first?["pm25"]?["previousValue"] == 30)
            #expect(highData.last?.first?["location"] == nil)
            // Created and deleted, for the station whose id ends in 2; a deleted entity is its id and type.
            let lifeData = try data(life)
            #expect(lifeData.count == 2)
            #expect(lifeData.last?.first == ["id": "urn:ngsi-ld:AirQualityObserved:2", "type": "AirQualityObserved"])
            // Inside Futian: every change of station 1 (created, pm25, name), in keyValues; station 2 is outside.
            let futianData = try data(futian)
            #expect(futianData.count == 3)
            #expect(futianData.allSatisfy { $0.first?["id"] == "urn:ngsi-ld:AirQualityObserved:1" })
            #expect(futianData.last?.first?["name"] == "福田监测站")
            #expect(futianData[1].first?["pm25"] == 70)
            #expect(queued.count == 7)
            // Notification ids are unique; rows carry the standard's headers.
            #expect(Set(queued.map(\.notificationID)).count == queued.count)
            #expect(queued.allSatisfy { $0.envelope.contains("json-ld#context") })
        }
    }

    /// A slow endpoint does not hold up a fast one; a failing one is retried with backoff until it takes
    /// everything, and the subscription's statistics say so.
    @Test(arguments: TestDatabases.kinds)
    func endpointsAreIsolatedAndFailuresRetried(_ kind: DialectKind) async throws {
        let fast = NotificationReceiver()
        let slow = NotificationReceiver { _ in (.seconds(2), .ok) }
        let flaky = NotificationReceiver { n in (.zero, n <= 2 ? .internalServerError : .ok) }
        try await fast.serve { fastURL in
            try await slow.serve { slowURL in
                try await flaky.serve { flakyURL in
                    try await withTwin(kind) { twin in
                        var ids: [String: String] = [:]
                        for (name, url) in [("fast", fastURL), ("slow", slowURL), ("flaky", flakyURL)] {
                            let entity = "urn:ngsi-ld:Streetlight:\(name)"
                            ids[name] = try await twin.subscriptions.create(
                                Self.subscription(["entities": [["id": .string(entity), "type": "Streetlight"]]], endpoint: url + "/\(name)"), context: core, tenant: .default)
                            _ = try await twin.entities.create(["id": .string(entity), "type": "Streetlight", "level": ["type": "Property", "value": 0]], context: core, tenant: .default)
                        }
                        let subscriptionIDs = ids
                        try await twin.delivering(twin.deliverer(copy: "copy-a")) {
                            for level in 1...10 {
                                for name in ["fast", "slow", "flaky"] {
                                    _ = try await twin.entities.update(
                                        "urn:ngsi-ld:Streetlight:\(name)", ["level": ["type": "Property", "value": .integer(Int64(level))]], context: core, tenant: .default)
                                }
                            }
                            // 11 each: the creation and ten updates. The fast endpoint has all of its own while the slow one
                            // (two seconds a request, four at a time) is still far from done.
                            let condition1 = try await NotificationReceiver.eventually(.seconds(3)) { fast.notificationIDs.count == 11 }
                            #expect(condition1)
                            #expect(slow.received.count < 11)
                            let condition2 = try await NotificationReceiver.eventually(.seconds(10)) { flaky.notificationIDs.count == 11 }
                            #expect(condition2)
                            #expect(flaky.requests >= 13)
                            let levels = Set(fast.received.compactMap { $0.body["data"]?.arrayValue?.first?["level"]?["value"]?.numberValue })
                            #expect(levels == Set((0...10).map(Double.init)))
                            #expect(fast.received.allSatisfy { $0.body["type"] == "Notification" && $0.body["subscriptionId"] == .string(subscriptionIDs["fast"]!) })
                            #expect(fast.received.first?.headers[.contentType] == "application/json")
                            let counted = try await NotificationReceiver.eventually(.seconds(3)) {
                                let record = try await twin.subscriptions.retrieve(subscriptionIDs["flaky"]!, tenant: .default)
                                return record.delivery.timesFailed >= 2 && record.delivery.timesSent >= 13 && record.delivery.lastSuccess != nil
                            }
                            #expect(counted)
                        }
                    }
                }
            }
        }
    }

    /// Notifications queued by a copy that stopped before sending them are sent after a restart, each once.
    @Test(arguments: TestDatabases.kinds)
    func pendingNotificationsAreSentAfterARestart(_ kind: DialectKind) async throws {
        let receiver = NotificationReceiver()
        try await receiver.serve { url in
            try await withTwin(kind, lease: .seconds(1)) { twin in
                let id = try await twin.subscriptions.create(
                    Self.subscription(["entities": [["type": "WaterLevel"]]], endpoint: url + "/water"), context: core, tenant: .default)
                // A copy with a deliverer that never runs: it claims what its writes queue, then stops.
                twin.matcher.deliver(through: twin.deliverer(copy: "copy-a"))
                for n in 1...20 {
                    _ = try await twin.entities.create(
                        ["id": .string("urn:ngsi-ld:WaterLevel:\(n)"), "type": "WaterLevel", "depth": ["type": "Property", "value": .double(Double(n) / 10)]],
                        context: core, tenant: .default)
                }
                // Nothing was delivering: the twenty wait in the outbox, claimed by the copy that queued them.
                #expect(receiver.requests == 0)
                #expect(try await twin.outbox().count == 20)
                // A new copy: on SQLite it takes over every claim at start; on PostgreSQL once the old lease ends.
                try await twin.delivering(twin.deliverer(copy: "copy-b"), releaseEveryClaimFirst: kind == .sqlite) {
                    let condition3 = try await NotificationReceiver.eventually(.seconds(10)) { receiver.notificationIDs.count == 20 }
                    #expect(condition3)
                    let condition4 = try await NotificationReceiver.eventually(.seconds(3)) { try await twin.outbox().isEmpty }
                    #expect(condition4)
                }
                #expect(receiver.received.count == 20)
                #expect(receiver.received.allSatisfy { $0.body["subscriptionId"] == .string(id) })
            }
        }
    }

    /// Two copies claiming the outbox at once never take the same notification.
    @Test(arguments: TestDatabases.kinds)
    func copiesClaimEachNotificationOnce(_ kind: DialectKind) async throws {
        try await withTwin(kind, lease: .milliseconds(1)) { twin in
            _ = try await twin.subscriptions.create(Self.subscription(["entities": [["type": "ParkingSpot"]]], endpoint: "http://127.0.0.1:9/p"), context: core, tenant: .default)
            for n in 0..<30 {
                let batch: JSON = .array((0..<10).map { i in ["id": .string("urn:ngsi-ld:ParkingSpot:\(n * 10 + i)"), "type": "ParkingSpot", "free": ["type": "Property", "value": true]] })
                _ = try await twin.entities.batchCreate(batch, context: core, tenant: .default)
            }
            try await Task.sleep(for: .milliseconds(50))
            let copies = ["copy-1", "copy-2"].map { NotificationOutbox(database: twin.database, copy: $0) }
            let taken = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for outbox in copies {
                    group.addTask {
                        var mine: [Int64] = []
                        while true {
                            let claimed = try await outbox.claim(limit: 7, excluding: [], now: Date(), lease: .seconds(60))
                            if claimed.isEmpty { return mine }
                            mine += claimed.map(\.rowID)
                        }
                    }
                }
                return try await group.reduce(into: [[Int64]]()) { $0.append($1) }
            }
            let all = taken.flatMap { $0 }
            #expect(Set(all).count == all.count)
            #expect(Set(all).count == (try await twin.outbox()).count)
            #expect(all.count > 0)
        }
    }

    /// Throttling lets one notification through per period; an expired subscription sends none; a periodic
    /// one sends the current state of what it selects every `timeInterval`, whatever changed.
    @Test(arguments: TestDatabases.kinds)
    func throttledExpiredAndPeriodicSubscriptions(_ kind: DialectKind) async throws {
        let receiver = NotificationReceiver()
        try await receiver.serve { url in
            try await withTwin(kind) { twin in
                let manholes: JSON = [["type": "ManholeCover"]]
                let throttled = try await twin.subscriptions.create(
                    Self.subscription(["entities": manholes, "throttling": 3600], endpoint: url + "/throttled"), context: core, tenant: .default)
                let expired = try await twin.subscriptions.create(
                    Self.subscription(["entities": manholes, "expiresAt": "2020-01-01T00:00:00Z"], endpoint: url + "/expired"), context: core, tenant: .default)
                let periodic = try await twin.subscriptions.create(
                    Self.subscription(["entities": manholes, "timeInterval": 1, "q": "tilt>=0"], endpoint: url + "/periodic"), context: core, tenant: .default)
                for n in 1...2 {
                    _ = try await twin.entities.create(
                        ["id": .string("urn:ngsi-ld:ManholeCover:\(n)"), "type": "ManholeCover", "tilt": ["type": "Property", "value": 0]], context: core, tenant: .default)
                }
                for tilt in 1...4 {
                    _ = try await twin.entities.update("urn:ngsi-ld:ManholeCover:1", ["tilt": ["type": "Property", "value": .integer(Int64(tilt))]], context: core, tenant: .default)
                }
                let queued = try await twin.outbox()
                #expect(queued.filter { $0.subscriptionID == throttled }.count == 1)
                #expect(queued.filter { $0.subscriptionID == expired }.isEmpty)
                #expect(queued.filter { $0.subscriptionID == periodic }.isEmpty)
                #expect(twin.subscriptions.render(try await twin.subscriptions.retrieve(expired, tenant: .default))["status"] == "expired")

                let database = twin.database
                let matcher = twin.matcher
                try await twin.delivering(twin.deliverer(copy: "copy-a")) {
                    let start = ContinuousClock.now
                    while ContinuousClock.now - start < .milliseconds(2500) {
                        try await matcher.notifyPeriodic(database: database)
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    let arrived = try await NotificationReceiver.eventually(.seconds(3)) { receiver.received.filter { $0.path == "/periodic" }.count >= 3 }
                    #expect(arrived)
                }
                let periodicBodies = receiver.received.filter { $0.path == "/periodic" }
                // At 0 s, 1 s and 2 s; never more often than once a second.
                #expect((3...4).contains(periodicBodies.count))
                #expect(periodicBodies.allSatisfy { ($0.body["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []) == ["urn:ngsi-ld:ManholeCover:1", "urn:ngsi-ld:ManholeCover:2"] })
                #expect(periodicBodies.last?.body["data"]?.arrayValue?.first?["tilt"]?["value"] == 4)
            }
        }
    }

    /// An `mqtt://` endpoint gets the notification body published on its topic, through a real Mosquitto.
    @Test(arguments: TestDatabases.kinds)
    func notificationsArePublishedOverMQTT(_ kind: DialectKind) async throws {
        guard let broker = try TestBroker.address() else { return }
        let topic = "citytwin/test/\(UUID().uuidString.prefix(8))/air"
        let messages = Mutex<[MQTTClient.Message]>([])
        let listener = try MQTTClient(host: broker.host, port: broker.port, clientID: "listener-\(UUID().uuidString.prefix(8))") { message in
            messages.withLock { $0.append(message) }
        }
        try listener.subscribe(topic)
        try await listener.connect()
        defer { listener.close() }
        try await Task.sleep(for: .milliseconds(200))
        try await withTwin(kind) { twin in
            let id = try await twin.subscriptions.create(
                Self.subscription(["entities": [["type": "AirQualityObserved"]], "notification": ["format": "keyValues"]], endpoint: "mqtt://\(broker.host):\(broker.port)/\(topic)"),
                context: core, tenant: .default)
            let mqtt = MQTTNotificationSender()
            defer { mqtt.close() }
            let deliverer = NotificationDeliverer(
                outbox: NotificationOutbox(database: twin.database, copy: "copy-a"), sender: NotificationSenders(mqtt: mqtt), pollInterval: .milliseconds(100),
                logger: Self.logger)
            try await twin.delivering(deliverer) {
                _ = try await twin.entities.create(Self.station(1, pm25: 30, at: (114.05, 22.53)), context: core, tenant: .default)
                _ = try await twin.entities.update("urn:ngsi-ld:AirQualityObserved:1", ["pm25": ["type": "Property", "value": 80]], context: core, tenant: .default)
                let arrived = try await NotificationReceiver.eventually(.seconds(10)) { messages.withLock { $0.count } >= 2 }
                #expect(arrived)
            }
            let bodies = try messages.withLock { $0 }.map { try JSONCoding.parse(Data($0.payload)) }
            #expect(bodies.count == 2)
            #expect(bodies.allSatisfy { $0["type"] == "Notification" && $0["subscriptionId"] == .string(id) })
            #expect(bodies.last?["data"]?.arrayValue?.first?["pm25"] == 80)
            let record = try await twin.subscriptions.retrieve(id, tenant: .default)
            #expect(record.delivery.timesSent == 2)
        }
    }

    /// Publishing to a broker that is not there fails (and the deliverer retries) instead of hanging.
    @Test func mqttToAnAbsentBrokerFails() async throws {
        let sender = MQTTNotificationSender()
        defer { sender.close() }
        let item = OutboxItem(
            rowID: 1, tenant: "", subscriptionID: "urn:ngsi-ld:Subscription:x", notificationID: "urn:ngsi-ld:Notification:x",
            endpoint: "mqtt://127.0.0.1:9/city/air", envelope: #"{"headers":[]}"#, data: "[]", attempts: 0)
        let start = ContinuousClock.now
        await #expect(throws: (any Error).self) { try await sender.send(item, notifiedAt: Date()) }
        #expect(ContinuousClock.now - start < .seconds(8))
    }

    /// An `mqtts://` endpoint is published to over TLS once the broker's certificate chains to the configured
    /// CA; a sender that trusts only the system's CAs fails, saying why, and publishes nothing.
    @Test func notificationsArePublishedOverMQTTWithTLS() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let text = environment["CITYTWIN_TEST_MQTTS_URL"], let broker = MQTTEndpoint(url: text), let caFile = environment["CITYTWIN_TEST_MQTT_CA_FILE"] else {
            if environment["CI"] != nil { Issue.record("CITYTWIN_TEST_MQTTS_URL is not set: the test command starts Mosquitto with TLS") }
            return
        }
        let topic = "citytwin/test/\(UUID().uuidString.prefix(8))/tls"
        let messages = Mutex<[MQTTClient.Message]>([])
        let listener = try MQTTClient(
            host: broker.host, port: broker.port, clientID: "listener-\(UUID().uuidString.prefix(8))", tls: MQTTClient.TLS(caFile: caFile)
        ) { message in messages.withLock { $0.append(message) } }
        try listener.subscribe(topic)
        try await listener.connect()
        defer { listener.close() }
        try await Task.sleep(for: .milliseconds(200))
        func item(_ n: Int) -> OutboxItem {
            OutboxItem(
                rowID: Int64(n), tenant: "", subscriptionID: "urn:ngsi-ld:Subscription:tls", notificationID: "urn:ngsi-ld:Notification:\(n)",
                endpoint: "\(text)/\(topic)", envelope: #"{"headers":[]}"#, data: #"[{"id":"urn:ngsi-ld:ManholeCover:\#(n)","type":"ManholeCover"}]"#, attempts: 0)
        }
        let untrusting = MQTTNotificationSender()
        defer { untrusting.close() }
        await #expect { try await untrusting.send(item(1), notifiedAt: Date()) } throws: { "\($0)".contains("certificate verify failed") }

        let sender = MQTTNotificationSender(caFile: caFile)
        defer { sender.close() }
        try await sender.send(item(2), notifiedAt: Date())
        let arrived = try await NotificationReceiver.eventually(.seconds(5)) { messages.withLock { $0.count } >= 1 }
        #expect(arrived)
        try await Task.sleep(for: .milliseconds(200))
        let bodies = try messages.withLock { $0 }.map { try JSONCoding.parse(Data($0.payload)) }
        #expect(bodies.map { $0["id"] } == ["urn:ngsi-ld:Notification:2"])
        #expect(bodies.first?["data"]?.arrayValue?.first?["id"] == "urn:ngsi-ld:ManholeCover:2")
    }
}
