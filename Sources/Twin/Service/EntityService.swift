import CityKit
import Foundation
import Synchronization

/// The NGSI-LD entity operations: validation, expansion and the edit rules, over an `EntityStore`.
///
/// Request handlers parse HTTP and call one method here; tests call these methods directly.
public struct EntityService: Sendable {
    public let store: any EntityStore
    public let clock: any WallClock
    /// The most entities one query may return (`limit` above it → `TooManyResults`).
    public let maximumLimit: Int

    public init(store: any EntityStore, clock: any WallClock = SystemWallClock(), maximumLimit: Int = 1000) {
        self.store = store
        self.clock = clock
        self.maximumLimit = maximumLimit
    }

    /// The outcome of an attribute update or append that may apply only in part.
    public struct PartialOutcome: Sendable, Equatable {
        public var updated: [String] = []
        public var notUpdated: [(name: String, reason: String)] = []
        public var isComplete: Bool { notUpdated.isEmpty }

        public static func == (a: PartialOutcome, b: PartialOutcome) -> Bool {
            a.updated == b.updated && a.notUpdated.map(\.name) == b.notUpdated.map(\.name)
        }
    }

    /// One entity's outcome in a batch.
    public struct BatchOutcome: Sendable {
        public var created: [String] = []
        public var succeeded: [String] = []
        public var errors: [(id: String, error: NGSIError)] = []

        public init() {}
    }

    // MARK: Single entity

    public func create(_ body: JSON, context: LDContext, tenant: Tenant) async throws -> String {
        var input = try EntityInput(context: context, now: clock.now()).entity(body)
        input.stampCreated(clock.now())
        let entity = input
        let results = try await store.apply([entity.id], tenant: tenant) { (id, existing) throws(NGSIError) in
            guard existing == nil else { throw NGSIError(.alreadyExists, "entity \(id) already exists") }
            return .put(entity)
        }
        _ = try results[0].get()
        return entity.id
    }

    public func retrieve(_ id: String, tenant: Tenant) async throws -> Entity {
        try Self.checkID(id)
        try await requireTenant(tenant)
        guard let entity = try await store.retrieve(id, tenant: tenant) else { throw NGSIError.notFound("entity \(id) was not found") }
        return entity
    }

    public func delete(_ id: String, tenant: Tenant) async throws {
        try Self.checkID(id)
        try await requireTenant(tenant)
        let results = try await store.apply([id], tenant: tenant) { (id, existing) throws(NGSIError) in
            guard existing != nil else { throw .notFound("entity \(id) was not found") }
            return .delete
        }
        _ = try results[0].get()
    }

    /// PUT /entities/{id}: the body replaces every attribute (and the type).
    public func replace(_ id: String, _ body: JSON, context: LDContext, tenant: Tenant) async throws {
        try Self.checkID(id)
        let now = clock.now()
        let input = try EntityInput(context: context, now: now).entity(body, idFromPath: id)
        try await requireTenant(tenant)
        try await single(id, tenant) { (id, existing) throws(NGSIError) in
            guard let existing else { throw .notFound("entity \(id) was not found") }
            var replaced = input
            replaced.stampCreated(now)
            replaced.createdAt = existing.createdAt
            return .put(replaced)
        }
    }

    /// PATCH /entities/{id}: JSON merge-patch of attributes; `urn:ngsi-ld:null` deletes.
    public func merge(_ id: String, _ body: JSON, context: LDContext, tenant: Tenant) async throws {
        try Self.checkID(id)
        let now = clock.now()
        let input = try EntityInput(context: context, now: now).entity(body, idFromPath: id, requireType: false)
        try await requireTenant(tenant)
        try await single(id, tenant) { (id, existing) throws(NGSIError) in
            guard var entity = existing else { throw .notFound("entity \(id) was not found") }
            Self.merge(input, into: &entity, now: now)
            return .put(entity)
        }
    }

    static func merge(_ input: Entity, into entity: inout Entity, now: Date) {
        for type in input.types where !entity.types.contains(type) { entity.types.append(type) }
        for (name, instances) in input.attributes {
            for instance in instances {
                if Entity.isDeletion(instance) {
                    _ = entity.remove(name, datasetId: instance["datasetId"], all: false)
                } else {
                    entity.merge(name, instance, now: now)
                }
            }
        }
        entity.modifiedAt = now
    }

    /// POST /entities/{id}/attrs: adds attributes, overwriting unless `noOverwrite`.
    public func append(_ id: String, _ body: JSON, noOverwrite: Bool, context: LDContext, tenant: Tenant) async throws -> PartialOutcome {
        try Self.checkID(id)
        let now = clock.now()
        let input = try EntityInput(context: context, now: now).entity(body, idFromPath: id, requireType: false)
        try await requireTenant(tenant)
        return try await single(id, tenant) { (id, existing) throws(NGSIError) in
            guard var entity = existing else { throw .notFound("entity \(id) was not found") }
            var outcome = PartialOutcome()
            for type in input.types where !entity.types.contains(type) { entity.types.append(type) }
            for (name, instances) in input.attributes.sorted(by: { $0.key < $1.key }) {
                for instance in instances {
                    if noOverwrite && entity.has(name, datasetId: instance["datasetId"]) {
                        outcome.notUpdated.append((context.compact(name), "the attribute exists and noOverwrite was given"))
                    } else {
                        entity.put(name, instance, now: now)
                        outcome.updated.append(context.compact(name))
                    }
                }
            }
            entity.modifiedAt = now
            return (.put(entity), outcome)
        }
    }

    /// PATCH /entities/{id}/attrs: replaces attributes that exist; reports the others as not updated.
    public func update(_ id: String, _ body: JSON, context: LDContext, tenant: Tenant) async throws -> PartialOutcome {
        try Self.checkID(id)
        let now = clock.now()
        let input = try EntityInput(context: context, now: now).entity(body, idFromPath: id, requireType: false)
        try await requireTenant(tenant)
        return try await single(id, tenant) { (id, existing) throws(NGSIError) in
            guard var entity = existing else { throw .notFound("entity \(id) was not found") }
            var outcome = PartialOutcome()
            for (name, instances) in input.attributes.sorted(by: { $0.key < $1.key }) {
                for instance in instances {
                    if entity.has(name, datasetId: instance["datasetId"]) {
                        if Entity.isDeletion(instance) {
                            _ = entity.remove(name, datasetId: instance["datasetId"], all: false)
                        } else {
                            entity.put(name, instance, now: now)
                        }
                        outcome.updated.append(context.compact(name))
                    } else {
                        outcome.notUpdated.append((context.compact(name), "the attribute does not exist"))
                    }
                }
            }
            if outcome.updated.isEmpty { return (.unchanged, outcome) }
            entity.modifiedAt = now
            return (.put(entity), outcome)
        }
    }

    /// PATCH /entities/{id}/attrs/{attr}: merges into one attribute instance.
    public func partialUpdate(_ id: String, attribute: String, _ body: JSON, context: LDContext, tenant: Tenant) async throws {
        try await editAttribute(id, attribute: attribute, body, context: context, tenant: tenant, merging: true)
    }

    /// PUT /entities/{id}/attrs/{attr}: replaces one attribute instance.
    public func replaceAttribute(_ id: String, attribute: String, _ body: JSON, context: LDContext, tenant: Tenant) async throws {
        try await editAttribute(id, attribute: attribute, body, context: context, tenant: tenant, merging: false)
    }

    private func editAttribute(_ id: String, attribute: String, _ body: JSON, context: LDContext, tenant: Tenant, merging: Bool) async throws {
        try Self.checkID(id)
        let now = clock.now()
        let input = EntityInput(context: context, now: now)
        let name = try input.attributeName(attribute)
        guard case .object(var object) = body else { throw NGSIError.badData("an attribute must be a JSON object") }
        object["@context"] = nil
        let instance: [String: JSON]
        if merging, object["type"] == nil {
            // A fragment: members to change on the existing instance, type taken from it.
            instance = object
        } else {
            instance = try input.attribute(attribute, .object(object), depth: 0)
        }
        try await requireTenant(tenant)
        try await single(id, tenant) { (id, existing) throws(NGSIError) in
            guard var entity = existing else { throw .notFound("entity \(id) was not found") }
            guard let index = entity.instanceIndex(name, datasetId: instance["datasetId"]) else {
                throw .notFound("entity \(id) has no attribute \(attribute)\(instance["datasetId"].map { " with datasetId \($0.stringValue ?? "")" } ?? "")")
            }
            if merging {
                var merged = entity.attributes[name]![index]
                for key in ["createdAt", "modifiedAt"] { merged[key] = nil }
                for (key, value) in instance { merged[input.isReserved(key) ? key : input.context.expand(key)] = value }
                entity.put(name, try input.attribute(attribute, .object(merged), depth: 0), now: now)
            } else {
                entity.put(name, instance, now: now)
            }
            entity.modifiedAt = now
            return .put(entity)
        }
    }

    /// DELETE /entities/{id}/attrs/{attr}
    public func deleteAttribute(_ id: String, attribute: String, datasetId: String?, deleteAll: Bool, context: LDContext, tenant: Tenant) async throws {
        try Self.checkID(id)
        let name = try EntityInput(context: context, now: clock.now()).attributeName(attribute)
        if let datasetId, !EntityInput.isURI(datasetId) { throw NGSIError.badData("datasetId must be a URI") }
        let now = clock.now()
        try await requireTenant(tenant)
        try await single(id, tenant) { (id, existing) throws(NGSIError) in
            guard var entity = existing else { throw .notFound("entity \(id) was not found") }
            guard entity.remove(name, datasetId: datasetId.map(JSON.string), all: deleteAll) else {
                throw .notFound("entity \(id) has no attribute \(attribute)\(datasetId.map { " with datasetId \($0)" } ?? "")")
            }
            entity.modifiedAt = now
            return .put(entity)
        }
    }

    // MARK: Helpers

    @discardableResult
    private func single<T: Sendable>(_ id: String, _ tenant: Tenant, _ body: @escaping @Sendable (String, Entity?) throws(NGSIError) -> (EntityChange, T)) async throws -> T {
        let box = ResultBox<T>()
        let results = try await store.apply([id], tenant: tenant) { (id, existing) throws(NGSIError) in
            let (change, value) = try body(id, existing)
            box.set(value)
            return change
        }
        _ = try results[0].get()
        return box.get()!
    }

    private func single(_ id: String, _ tenant: Tenant, _ body: @escaping @Sendable (String, Entity?) throws(NGSIError) -> EntityChange) async throws {
        let results = try await store.apply([id], tenant: tenant, body)
        _ = try results[0].get()
    }

    /// Reads of an unknown tenant answer `NonexistentTenant`.
    public func requireTenant(_ tenant: Tenant) async throws {
        if tenant.isDefault { return }
        guard try await store.tenantExists(tenant) else { throw NGSIError(.nonexistentTenant, "tenant \(tenant.name) does not exist") }
    }

    static func checkID(_ id: String) throws(NGSIError) {
        guard EntityInput.isURI(id) else { throw .badData("\(id) is not a valid entity id (a URI)") }
    }
}

/// Carries a value out of a store closure that runs exactly once inside the transaction.
final class ResultBox<T: Sendable>: Sendable {
    private let value = Mutex<T?>(nil)
    func set(_ v: T) { value.withLock { $0 = v } }
    func get() -> T? { value.withLock { $0 } }
}
