import CityKit
import Foundation

/// The NGSI-LD subscription operations: checking, storing, and showing subscriptions with how their
/// notifications fared.
public struct SubscriptionService: Sendable {
    public let store: any SubscriptionStore
    let contexts: ContextResolver
    let clock: any WallClock
    let ids: any IDGenerator
    /// The most subscriptions one list may return.
    public let maximumLimit: Int

    public init(
        store: any SubscriptionStore, contexts: ContextResolver, clock: any WallClock = SystemWallClock(), ids: any IDGenerator = RandomIDGenerator(),
        maximumLimit: Int = 1000
    ) {
        self.store = store
        self.contexts = contexts
        self.clock = clock
        self.ids = ids
        self.maximumLimit = maximumLimit
    }

    /// POST /subscriptions: checks and stores a subscription; answers its id.
    public func create(_ body: JSON, context: LDContext, tenant: Tenant) async throws -> String {
        let subscription = try SubscriptionInput(context: context).subscription(body, id: "urn:ngsi-ld:Subscription:" + ids.next())
        let now = clock.now()
        let record = SubscriptionRecord(
            tenant: tenant, id: subscription.id, body: .object(subscription.given), contextValue: context.source, createdAt: now, modifiedAt: now)
        guard try await store.create(record) else { throw NGSIError(.alreadyExists, "subscription \(subscription.id) already exists") }
        return subscription.id
    }

    public func retrieve(_ id: String, tenant: Tenant) async throws -> SubscriptionRecord {
        try Self.checkID(id)
        guard let record = try await store.retrieve(id, tenant: tenant) else { throw NGSIError.notFound("subscription \(id) was not found") }
        return record
    }

    /// GET /subscriptions: one page (limit default 20) and the total.
    public func list(tenant: Tenant, limit: String?, offset: String?) async throws -> (records: [SubscriptionRecord], total: Int) {
        var (n, skip) = (20, 0)
        if let limit {
            guard let value = Int(limit), value >= 0 else { throw NGSIError.badData("limit must be a non-negative integer") }
            guard value <= maximumLimit else { throw NGSIError(.tooManyResults, "limit \(value) is above the maximum of \(maximumLimit)") }
            n = value
        }
        if let offset {
            guard let value = Int(offset), value >= 0 else { throw NGSIError.badData("offset must be a non-negative integer") }
            skip = value
        }
        return try await store.list(tenant: tenant, limit: n, offset: skip)
    }

    /// PATCH /subscriptions/{id}: the members given replace the stored ones (`notification` and its
    /// `endpoint` member by member; `null` removes a member). A patch with its own @context is read in it,
    /// and the subscription keeps that context from then on.
    public func update(_ id: String, _ patch: JSON, context: LDContext, tenant: Tenant) async throws {
        try Self.checkID(id)
        guard case .object(let members) = patch, !members.isEmpty else { throw NGSIError.badData("a subscription update is a non-empty JSON object") }
        if let given = members["id"], given != .string(id) { throw NGSIError.badData("the id of a subscription cannot change") }
        var record = try await retrieve(id, tenant: tenant)
        guard case .object(var body) = record.body else { throw NGSIError(.internalError, "subscription \(id) is not stored as an object") }
        for (key, value) in members where key != "@context" {
            if key == "notification", case .object(let update) = value, case .object(let stored)? = body[key] {
                body[key] = .object(Self.merge(stored, update, nested: ["endpoint"]))
            } else if value == .null {
                body[key] = nil
            } else {
                body[key] = value
            }
        }
        if context.source != nil { record.contextValue = context.source }
        let readIn = context.source != nil ? context : try await storedContext(record)
        let subscription = try SubscriptionInput(context: readIn).subscription(.object(body), id: id)
        record.body = .object(subscription.given)
        record.modifiedAt = clock.now()
        guard try await store.update(record) else { throw NGSIError.notFound("subscription \(id) was not found") }
    }

    /// The @context a stored subscription was written in.
    func storedContext(_ record: SubscriptionRecord) async throws -> LDContext {
        try await contexts.resolve(record.contextValue)
    }

    static func merge(_ stored: [String: JSON], _ update: [String: JSON], nested: Set<String>) -> [String: JSON] {
        var out = stored
        for (key, value) in update {
            if nested.contains(key), case .object(let inner) = value, case .object(let old)? = stored[key] {
                out[key] = .object(merge(old, inner, nested: []))
            } else if value == .null {
                out[key] = nil
            } else {
                out[key] = value
            }
        }
        return out
    }

    public func delete(_ id: String, tenant: Tenant) async throws {
        try Self.checkID(id)
        guard try await store.delete(id, tenant: tenant) else { throw NGSIError.notFound("subscription \(id) was not found") }
    }

    /// A stored subscription as retrieval shows it: as written, with `status` and the delivery statistics in
    /// `notification`, and with `sysAttrs` its creation and modification times.
    public func render(_ record: SubscriptionRecord, sysAttrs: Bool = false) -> JSON {
        guard case .object(var out) = record.body else { return record.body }
        let now = clock.now()
        let expiresAt = out["expiresAt"]?.stringValue.flatMap(Timestamp.parse)
        out["status"] = .string(Subscription.status(isActive: out["isActive"] != .bool(false), expiresAt: expiresAt, at: now))
        if case .object(var notification)? = out["notification"] {
            let d = record.delivery
            notification["timesSent"] = .integer(Int64(d.timesSent))
            notification["timesFailed"] = .integer(Int64(d.timesFailed))
            if let t = d.lastNotification { notification["lastNotification"] = .string(Timestamp.string(t)) }
            if let t = d.lastSuccess { notification["lastSuccess"] = .string(Timestamp.string(t)) }
            if let t = d.lastFailure { notification["lastFailure"] = .string(Timestamp.string(t)) }
            if d.lastNotification != nil {
                notification["status"] = .string(d.lastFailure != nil && d.lastFailure == d.lastNotification ? "failed" : "ok")
            }
            out["notification"] = .object(notification)
        }
        if sysAttrs {
            out["createdAt"] = .string(Timestamp.string(record.createdAt))
            out["modifiedAt"] = .string(Timestamp.string(record.modifiedAt))
        }
        return .object(out)
    }

    static func checkID(_ id: String) throws(NGSIError) {
        guard EntityInput.isURI(id) else { throw .badData("\(id) is not a valid subscription id (a URI)") }
    }
}
