import CityKit
import Foundation
import Logging
import SQLKit
import Storage
import Synchronization

/// Decides, inside each write's transaction, which subscriptions the write makes fire, and puts their
/// notifications in the outbox there, so that a write that answered 2xx has its notifications stored.
///
/// Subscriptions are cached per copy and reloaded when their revision (raised by every subscription change,
/// in any copy) moves; the check is one read in the write's own transaction, so a write never misses a
/// subscription that was committed before it.
public final class SubscriptionMatcher: EntityChangeObserver {
    let contexts: ContextResolver
    let clock: any WallClock
    let ids: any IDGenerator
    let logger: Logger
    /// This copy's name, written as the claim of the notifications it queues (it delivers them itself).
    public let copy: String
    /// How long a claim lasts without renewal.
    public let lease: Duration
    private let cache = Mutex(Cache())
    private let deliverer = Mutex<NotificationDeliverer?>(nil)

    /// A subscription ready for matching: checked, with the context its notifications are compacted with.
    struct Active: Sendable {
        let tenant: Tenant
        let subscription: Subscription
        let context: LDContext
        /// The subscription's `entities`, compiled once for all the changes they are tested on.
        let selectors: [EntitySelector.Compiled]

        init(tenant: Tenant, subscription: Subscription, context: LDContext) {
            self.tenant = tenant
            self.subscription = subscription
            self.context = context
            self.selectors = subscription.entities.map { $0.compiled() }
        }

        /// Whether the subscription selects the entity (by `entities`; every one when it has none).
        func selects(id: String, types: [String]) -> Bool {
            selectors.isEmpty || selectors.contains { $0.matches(id: id, types: types) }
        }
    }

    struct Cache {
        var revision: Int64 = -1
        var byTenant: [String: [Active]] = [:]
        /// `SubscriptionRevision.localChanges` when this was read (SQLite: unchanged means still current).
        var localChanges = -1
    }

    public init(contexts: ContextResolver, copy: String, lease: Duration = .seconds(60), clock: any WallClock = SystemWallClock(), ids: any IDGenerator = RandomIDGenerator(), logger: Logger) {
        self.contexts = contexts
        self.copy = copy
        self.lease = lease
        self.clock = clock
        self.ids = ids
        self.logger = logger
    }

    /// Where notifications go once their write has committed.
    public func deliver(through deliverer: NotificationDeliverer) {
        self.deliverer.withLock { $0 = deliverer }
    }

    /// Forgets the cached subscriptions (another copy changed them); the next write reloads them.
    public func invalidate() {
        cache.withLock { $0 = Cache() }
    }

    public func committed(_ items: [OutboxItem]) {
        guard !items.isEmpty else { return }
        deliverer.withLock { $0 }?.accept(items)
    }

    // MARK: Matching

    public func record(_ changes: [EntityChangeRecord], tenant: Tenant, kind: DialectKind, on db: any SQLDatabase) async throws -> [OutboxItem] {
        let subscriptions = try await active(tenant: tenant, kind: kind, on: db)
        guard !subscriptions.isEmpty, !changes.isEmpty else { return [] }
        let now = clock.now()
        var items: [OutboxItem] = []
        // Each change's id and types, read once for all the subscriptions it is tested on.
        let ids = changes.map(\.id)
        let types = changes.map { $0.after?.types ?? $0.before?.types ?? [] }
        for active in subscriptions where active.subscription.firesOnChange(at: now) {
            let subscription = active.subscription
            var matched: [EntityChangeRecord] = []
            for i in changes.indices where active.selects(id: ids[i], types: types[i]) && Self.fires(subscription, changes[i]) {
                matched.append(changes[i])
            }
            guard !matched.isEmpty else { continue }
            if subscription.q != nil || subscription.geo != nil {
                // The filters are those of entity queries, run on the state this transaction just wrote.
                let present = matched.compactMap { $0.after == nil ? nil : $0.id }
                let passing = try await Self.passing(present, subscription, tenant: tenant, kind: kind, on: db)
                matched = matched.filter { $0.after == nil || passing.contains($0.id) }
                guard !matched.isEmpty else { continue }
            }
            if let throttling = subscription.throttling {
                guard try await Self.takeThrottle(subscription.id, tenant: tenant, seconds: throttling, now: now, on: db) else { continue }
            }
            items.append(item(active, data: matched.map { render(active, $0) }))
        }
        guard !items.isEmpty else { return [] }
        return try await enqueue(items, now: now, kind: kind, on: db)
    }

    /// Puts notifications in the outbox: claimed by this copy when it has a deliverer to hand them to after
    /// the commit, otherwise free for whichever copy polls first.
    func enqueue(_ items: [OutboxItem], now: Date, kind: DialectKind, on db: any SQLDatabase) async throws -> [OutboxItem] {
        let claim = deliverer.withLock { $0 != nil }
        let leaseUntil = History.micros(now.addingTimeInterval(lease.seconds))
        if !claim { try await Database.notify(TwinEvents.channel, TwinEvents.outboxWaiting, kind: kind, on: db) }
        return try await NotificationOutbox.enqueue(items, copy: claim ? copy : nil, leaseUntil: leaseUntil, now: History.micros(now), kind: kind, on: db)
    }

    /// Whether the change is one of the subscription's triggers on one of its watched attributes.
    static func fires(_ subscription: Subscription, _ change: EntityChangeRecord) -> Bool {
        let triggers = subscription.triggers
        let watched = subscription.watchedAttributes
        func watchedNames(_ names: some Sequence<String>) -> Bool { names.contains { watched?.contains($0) ?? true } }
        switch (change.before, change.after) {
        case (nil, let after?):
            return triggers.contains(.entityCreated) || (triggers.contains(.attributeCreated) && watchedNames(after.attributes.keys))
        case (let before?, nil):
            return triggers.contains(.entityDeleted) || (triggers.contains(.attributeDeleted) && watchedNames(before.attributes.keys))
        case (let before?, let after?):
            let created = after.attributes.keys.filter { before.attributes[$0] == nil }
            let deleted = before.attributes.keys.filter { after.attributes[$0] == nil }
            let updated = after.attributes.keys.filter { name in before.attributes[name].map { $0 != after.attributes[name] } ?? false }
            if triggers.contains(.entityUpdated), watchedNames(created + deleted + updated) || (watched == nil && before.types != after.types) { return true }
            return (triggers.contains(.attributeCreated) && watchedNames(created)) || (triggers.contains(.attributeUpdated) && watchedNames(updated))
                || (triggers.contains(.attributeDeleted) && watchedNames(deleted))
        case (nil, nil):
            return false
        }
    }

    static func passing(_ ids: [String], _ subscription: Subscription, tenant: Tenant, kind: DialectKind, on db: any SQLDatabase) async throws -> Set<String> {
        var passing = Set<String>()
        for chunk in ids.chunked(400) {
            var query = EntityQuery()
            query.ids = chunk
            query.q = subscription.q
            query.geo = subscription.geo
            let rows = try await db.raw("SELECT e.id FROM entities e WHERE \(SQLEntityStore.condition(query, tenant: tenant, kind: kind))").all()
            for row in rows { passing.insert(try row.decode(column: "id", as: String.self)) }
        }
        return passing
    }

    /// Takes the subscription's throttle: true when its last notification was at least `seconds` ago.
    static func takeThrottle(_ id: String, tenant: Tenant, seconds: Double, now: Date, on db: any SQLDatabase) async throws -> Bool {
        let (micros, earliest) = (History.micros(now), History.micros(now.addingTimeInterval(-seconds)))
        return try await db.raw("""
            UPDATE subscriptions SET last_queued = \(bind: micros)
            WHERE tenant = \(bind: tenant.name) AND id = \(bind: id) AND (last_queued IS NULL OR last_queued <= \(bind: earliest)) RETURNING id
            """).first() != nil
    }

    // MARK: Notification content

    /// One entity as the subscription shows it: its format and attributes, compacted with its context,
    /// with the previous values when `showChanges`. A deleted entity is its id and type.
    func render(_ active: Active, _ change: EntityChangeRecord) -> JSON {
        let subscription = active.subscription
        let context = active.context
        guard let after = change.after else {
            let types = (change.before?.types ?? []).map { JSON.string(context.compact($0)) }
            return ["id": .string(change.id), "type": types.count == 1 ? types[0] : .array(types)]
        }
        var representation = Representation()
        representation.format = subscription.format
        representation.sysAttrs = subscription.sysAttrs
        representation.lang = subscription.lang
        representation.pick = subscription.attributes
        let rendered = representation.render(after, context: context)
        guard subscription.showChanges, subscription.format != .keyValues, let before = change.before, case .object(var out) = rendered else { return rendered }
        for (name, instances) in after.attributes {
            guard let previous = before.attributes[name]?.first(where: { $0["datasetId"] == nil }),
                let current = instances.first(where: { $0["datasetId"] == nil }), previous != current,
                case .object(var attribute)? = out[context.compact(name)]
            else { continue }
            let type = previous["type"]?.stringValue.flatMap(AttributeType.init(rawValue:)) ?? .property
            let member = type.valueMember
            attribute["previous" + member.prefix(1).uppercased() + member.dropFirst()] = previous[member] ?? .null
            out[context.compact(name)] = .object(attribute)
        }
        return .object(out)
    }

    /// The outbox row of one notification: its data and how it is sent.
    func item(_ active: Active, data: [JSON]) -> OutboxItem {
        let subscription = active.subscription
        let endpoint = subscription.endpoint
        var headers: [JSON] = []
        var bodyContext: JSON = .null
        let link = active.context.implicitURL ?? active.context.source?.stringValue ?? CoreContext.url
        let linkHeader = "<\(link)>; rel=\"\(NGSIRequest.linkRelation)\"; type=\"application/ld+json\""
        var payload: JSON = .array(data)
        switch endpoint.accept {
        case "application/ld+json":
            headers.append(["Content-Type", "application/ld+json"])
            bodyContext = active.context.source ?? .string(CoreContext.url)
        case "application/geo+json":
            headers.append(["Content-Type", "application/geo+json"])
            headers.append(["Link", .string(linkHeader)])
            let response = NGSIResponse(type: .geoJSON, context: active.context)
            payload = ["type": "FeatureCollection", "features": .array(data.map { response.feature($0, geoproperty: "location") })]
        default:
            headers.append(["Content-Type", "application/json"])
            headers.append(["Link", .string(linkHeader)])
        }
        if active.tenant != .default { headers.append(["NGSILD-Tenant", .string(active.tenant.name)]) }
        for info in endpoint.receiverInfo { headers.append([.string(info.key), .string(info.value)]) }
        let envelope: JSON = ["headers": .array(headers), "context": bodyContext]
        return OutboxItem(
            rowID: 0, tenant: active.tenant.name, subscriptionID: subscription.id, notificationID: "urn:ngsi-ld:Notification:" + ids.next(),
            endpoint: endpoint.uri, envelope: JSONCoding.string(envelope), data: JSONCoding.string(payload), attempts: 0)
    }

    // MARK: The cache

    /// The tenant's subscriptions, reloading every tenant's when the revision moved. With `kind` SQLite the revision is
    /// read only when this process changed subscriptions since the last read (see `SubscriptionRevision`).
    func active(tenant: Tenant, kind: DialectKind?, on db: any SQLDatabase) async throws -> [Active] {
        // Read before the revision: a change counted after this makes the next write read again.
        let localChanges = SubscriptionRevision.localChanges.load(ordering: .sequentiallyConsistent)
        if kind == .sqlite,
            let current = cache.withLock({ $0.revision >= 0 && $0.localChanges == localChanges ? $0.byTenant[tenant.name] ?? [] : nil })
        {
            return current
        }
        let revision = try await SQLSubscriptionStore.revision(on: db)
        if let current = cache.withLock({ cache -> [Active]? in
            guard cache.revision == revision else { return nil }
            cache.localChanges = localChanges
            return cache.byTenant[tenant.name] ?? []
        }) {
            return current
        }
        var byTenant: [String: [Active]] = [:]
        for record in try await SQLSubscriptionStore.all(on: db) {
            if let active = await prepare(record) { byTenant[record.tenant.name, default: []].append(active) }
        }
        cache.withLock { cache in
            if revision >= cache.revision { cache = Cache(revision: revision, byTenant: byTenant, localChanges: localChanges) }
        }
        return byTenant[tenant.name] ?? []
    }

    /// A stored subscription ready for matching, or nil (logged) if it can no longer be read.
    func prepare(_ record: SubscriptionRecord) async -> Active? {
        do {
            let context = try await contexts.resolve(record.contextValue)
            let subscription = try SubscriptionInput(context: context).subscription(record.body, id: record.id)
            var notificationContext = context
            if let url = subscription.given["jsonldContext"]?.stringValue { notificationContext = try await contexts.resolve(.string(url)) }
            return Active(tenant: record.tenant, subscription: subscription, context: notificationContext)
        } catch {
            logger.warning("subscription cannot be used", metadata: ["subscription": "\(record.id)", "error": "\(error)"])
            return nil
        }
    }

    /// Every tenant's active subscriptions (reloaded if they changed), for periodic notifications.
    func all(on db: any SQLDatabase) async throws -> [Active] {
        _ = try await active(tenant: .default, kind: nil, on: db)
        return cache.withLock { $0.byTenant.values.flatMap { $0 } }
    }

    // MARK: Periodic notifications

    /// The most entities one periodic notification carries.
    static let periodicLimit = 1000

    /// Queues the notifications of periodic subscriptions (`timeInterval`) that are due, each taken by one
    /// copy (its next time moves forward in the same statement), with the current state of what they select.
    public func notifyPeriodic(database: Database) async throws {
        let kind = database.kind
        let now = clock.now()
        // Most of the time there is no periodic subscription: a read says so without a write transaction.
        let periodic = try await database.read { db in try await self.all(on: db).contains { $0.subscription.timeInterval != nil } }
        guard periodic else { return }
        let items = try await database.write { db -> [OutboxItem] in
            var items: [OutboxItem] = []
            for active in try await self.all(on: db) {
                let subscription = active.subscription
                guard let interval = subscription.timeInterval, subscription.status(at: now) == "active" else { continue }
                let due = try await db.raw("""
                    UPDATE subscriptions SET next_periodic = \(bind: History.micros(now.addingTimeInterval(interval)))
                    WHERE tenant = \(bind: active.tenant.name) AND id = \(bind: subscription.id) AND (next_periodic IS NULL OR next_periodic <= \(bind: History.micros(now)))
                    RETURNING id
                    """).first() != nil
                guard due else { continue }
                let entities = try await Self.selected(subscription, tenant: active.tenant, kind: kind, on: db)
                guard !entities.isEmpty else { continue }
                items.append(self.item(active, data: entities.map { self.render(active, EntityChangeRecord(id: $0.id, before: nil, after: $0)) }))
            }
            guard !items.isEmpty else { return [] }
            return try await self.enqueue(items, now: now, kind: kind, on: db)
        }
        committed(items)
    }

    /// The entities a subscription selects now: its entities (id, pattern, type), q and geoQ.
    static func selected(_ subscription: Subscription, tenant: Tenant, kind: DialectKind, on db: any SQLDatabase) async throws -> [Entity] {
        var conditions: [SQLQueryString] = []
        for selector in subscription.entities {
            var query = EntityQuery()
            query.ids = selector.id.map { [$0] }
            query.idPattern = selector.idPattern
            query.types = selector.type
            conditions.append("(" + SQLEntityStore.condition(query, tenant: tenant, kind: kind) + ")")
        }
        var filter = EntityQuery()
        filter.q = subscription.q
        filter.geo = subscription.geo
        var condition = SQLEntityStore.condition(filter, tenant: tenant, kind: kind)
        if !conditions.isEmpty { condition = condition + " AND (" + conditions.joined(separator: " OR ") + ")" }
        let rows = try await db.raw("SELECT \(SQLEntityStore.columns(kind)) FROM entities e WHERE " + condition + " ORDER BY e.id LIMIT \(bind: periodicLimit)").all()
        return try rows.map(SQLEntityStore.decode)
    }
}
