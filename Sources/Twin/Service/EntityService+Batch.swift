import CityKit
import Foundation
import Synchronization

/// Batch operations (`/entityOperations/…`): each entity succeeds or fails on its own, in one transaction.
extension EntityService {
    public enum UpsertMode: String, Sendable { case replace, update }

    /// Parses a batch body: a non-empty JSON array.
    static func items(_ body: JSON) throws(NGSIError) -> [JSON] {
        guard case .array(let items) = body else { throw .badData("a batch operation takes a JSON array") }
        guard !items.isEmpty else { throw .badData("a batch operation needs at least one entity") }
        guard items.count <= 10_000 else { throw NGSIError(.tooManyResults, "a batch may hold at most 10000 entities") }
        return items
    }

    /// Validates every entity of a batch; invalid ones become per-entity errors.
    func parseBatch(_ items: [JSON], context: LDContext, requireType: Bool, outcome: inout BatchOutcome) -> [Entity] {
        let input = EntityInput(context: context, now: clock.now())
        var entities: [Entity] = []
        for item in items {
            do throws(NGSIError) {
                entities.append(try input.entity(item, requireType: requireType))
            } catch {
                let id = item["id"]?.stringValue ?? item["@id"]?.stringValue ?? ""
                outcome.errors.append((id, error))
            }
        }
        return entities
    }

    public func batchCreate(_ body: JSON, context: LDContext, tenant: Tenant) async throws -> BatchOutcome {
        var outcome = BatchOutcome()
        let now = clock.now()
        let entities = parseBatch(try Self.items(body), context: context, requireType: true, outcome: &outcome)
        let stamped = Self.stampedCreated(Self.lastByID(entities), now: now)
        let results = try await store.apply(entities.map(\.id), tenant: tenant) { (id, existing) throws(NGSIError) in
            guard existing == nil else { throw NGSIError(.alreadyExists, "entity \(id) already exists") }
            return .put(stamped[id]!)
        }
        collect(results, ids: entities.map(\.id), into: &outcome, created: true)
        return outcome
    }

    public func batchUpsert(_ body: JSON, mode: UpsertMode, context: LDContext, tenant: Tenant) async throws -> BatchOutcome {
        var outcome = BatchOutcome()
        let entities = parseBatch(try Self.items(body), context: context, requireType: true, outcome: &outcome)
        return try await upsert(entities, mode: mode, tenant: tenant, outcome: outcome)
    }

    /// Upserts entities already read (with `EntityInput`), in one transaction; `outcome` may hold errors
    /// found while reading them.
    public func upsert(_ entities: [Entity], mode: UpsertMode, tenant: Tenant, outcome: BatchOutcome = BatchOutcome()) async throws -> BatchOutcome {
        var outcome = outcome
        let now = clock.now()
        let byID = Self.lastByID(entities)
        let stamped = Self.stampedCreated(byID, now: now)
        let createdIDs = CreatedIDs()
        let results = try await store.apply(entities.map(\.id), tenant: tenant) { (id, existing) throws(NGSIError) in
            guard var entity = existing else {
                createdIDs.insert(id)
                return .put(stamped[id]!)
            }
            switch mode {
            case .replace:
                var replacing = stamped[id]!
                replacing.createdAt = entity.createdAt
                return .put(replacing)
            case .update:
                let input = byID[id]!
                for type in input.types where !entity.types.contains(type) { entity.types.append(type) }
                for (name, instances) in input.attributes {
                    for instance in instances { entity.put(name, instance, now: now) }
                }
                entity.modifiedAt = now
                return .put(entity)
            }
        }
        // An id named twice in the batch is reported once.
        var reported = Set(outcome.created + outcome.succeeded)
        for (id, result) in zip(entities.map(\.id), results) {
            switch result {
            case .success:
                guard reported.insert(id).inserted else { continue }
                if createdIDs.contains(id) { outcome.created.append(id) } else { outcome.succeeded.append(id) }
            case .failure(let error): outcome.errors.append((id, error))
            }
        }
        return outcome
    }

    public func batchUpdate(_ body: JSON, noOverwrite: Bool, context: LDContext, tenant: Tenant) async throws -> BatchOutcome {
        try await modifyExisting(body, context: context, tenant: tenant) { input, entity, now in
            for (name, instances) in input.attributes {
                for instance in instances where !(noOverwrite && entity.has(name, datasetId: instance["datasetId"])) {
                    entity.put(name, instance, now: now)
                }
            }
            entity.modifiedAt = now
        }
    }

    public func batchMerge(_ body: JSON, context: LDContext, tenant: Tenant) async throws -> BatchOutcome {
        try await modifyExisting(body, context: context, tenant: tenant) { input, entity, now in
            Self.merge(input, into: &entity, now: now)
        }
    }

    /// Applies `edit` to each entity of the batch that exists; absent ones fail with ResourceNotFound.
    private func modifyExisting(
        _ body: JSON, context: LDContext, tenant: Tenant, _ edit: @escaping @Sendable (Entity, inout Entity, Date) -> Void
    ) async throws -> BatchOutcome {
        var outcome = BatchOutcome()
        let now = clock.now()
        let entities = parseBatch(try Self.items(body), context: context, requireType: false, outcome: &outcome)
        let byID = Self.lastByID(entities)
        let results = try await store.apply(entities.map(\.id), tenant: tenant) { (id, existing) throws(NGSIError) in
            guard var entity = existing else { throw .notFound("entity \(id) was not found") }
            edit(byID[id]!, &entity, now)
            return .put(entity)
        }
        collect(results, ids: entities.map(\.id), into: &outcome, created: false)
        return outcome
    }

    public func batchDelete(_ body: JSON, tenant: Tenant) async throws -> BatchOutcome {
        var outcome = BatchOutcome()
        var ids: [String] = []
        for item in try Self.items(body) {
            guard case .string(let id) = item, EntityInput.isURI(id) else {
                outcome.errors.append((item.stringValue ?? "", .badData("batch delete takes an array of entity ids (URIs)")))
                continue
            }
            ids.append(id)
        }
        let results = try await store.apply(ids, tenant: tenant) { (id, existing) throws(NGSIError) in
            guard existing != nil else { throw .notFound("entity \(id) was not found") }
            return .delete
        }
        collect(results, ids: ids, into: &outcome, created: false)
        return outcome
    }

    private func collect(_ results: [Result<EntityChange, NGSIError>], ids: [String], into outcome: inout BatchOutcome, created: Bool) {
        for (id, result) in zip(ids, results) {
            switch result {
            case .success:
                if created { outcome.created.append(id) } else { outcome.succeeded.append(id) }
            case .failure(let error):
                outcome.errors.append((id, error))
            }
        }
    }

    /// The entities with `now` stamped as their creation, as a new or replacing entity is written whatever the
    /// stored one holds: done on the caller's thread, before the store's single write.
    static func stampedCreated(_ byID: [String: Entity], now: Date) -> [String: Entity] {
        byID.mapValues { input in
            var entity = input
            entity.stampCreated(now)
            return entity
        }
    }

    /// When a batch names an id twice, the last entry wins.
    static func lastByID(_ entities: [Entity]) -> [String: Entity] {
        var out: [String: Entity] = [:]
        for e in entities { out[e.id] = e }
        return out
    }
}

/// Ids created during a store closure (which runs inside the transaction, before the caller resumes).
final class CreatedIDs: Sendable {
    private let ids = Mutex<Set<String>>([])
    func insert(_ id: String) { _ = ids.withLock { $0.insert(id) } }
    func contains(_ id: String) -> Bool { ids.withLock { $0.contains(id) } }
}
