import CityKit
import Foundation
import Synchronization

/// The entities this process last wrote, exactly as they read back from the database, so that writes and
/// retrievals of recently written entities skip the read.
///
/// Only for SQLite, where this process is the file's only writer and every write of `entities` goes through
/// `SQLEntityStore.perform`, which puts the new states here after their transaction commits. Bounded: past
/// `capacity` entries, an eighth of them are forgotten.
final class EntityCache: Sendable {
    private let entries = Mutex<[String: Entity]>([:])
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    private static func key(_ id: String, _ tenant: Tenant) -> String { tenant.name + "\u{1F}" + id }

    func entity(_ id: String, tenant: Tenant) -> Entity? {
        entries.withLock { $0[Self.key(id, tenant)] }
    }

    /// The cached ones among `ids`.
    func entities(_ ids: [String], tenant: Tenant) -> [String: Entity] {
        entries.withLock { entries in
            var found: [String: Entity] = [:]
            for id in ids {
                if let entity = entries[Self.key(id, tenant)] { found[id] = entity }
            }
            return found
        }
    }

    /// Records committed states: an entity, or nil for one deleted.
    func store(_ states: [(id: String, entity: Entity?)], tenant: Tenant) {
        guard capacity > 0 else { return }
        entries.withLock { entries in
            for (id, entity) in states {
                entries[Self.key(id, tenant)] = entity
            }
            if entries.count > capacity {
                for key in entries.keys.prefix(max(entries.count - capacity, capacity / 8)) { entries[key] = nil }
            }
        }
    }

    /// The entity as the database gives it back once written: times at the millisecond, numbers as the JSON
    /// text has them (an integral real reads back as an integer).
    static func stored(_ entity: Entity, now: Date) -> Entity {
        func rounded(_ date: Date) -> Date { Timestamp.parse(Timestamp.string(date)) ?? date }
        return Entity(
            id: entity.id, types: entity.types,
            attributes: entity.attributes.mapValues { $0.map { $0.mapValues(JSONCoding.asWritten) } },
            createdAt: rounded(entity.createdAt ?? now), modifiedAt: rounded(entity.modifiedAt ?? now))
    }
}
