import CityKit
import Foundation
import Synchronization

/// The entities this process last wrote, exactly as they read back from the database, so that writes and
/// retrievals of recently written entities skip the read.
///
/// Only for SQLite, where this process is the file's only writer and every write of `entities` goes through
/// `SQLEntityStore.perform`, which puts the new states here after their transaction commits. Bounded: past
/// `capacity` entries, the ones written longest ago are forgotten first.
final class EntityCache: Sendable {
    struct State {
        var entries: [String: (entity: Entity, written: Int)] = [:]
        /// Keys in the order written (with the write's number, so an entry written again is kept).
        var order: [(key: String, written: Int)] = []
        var head = 0
        var writes = 0
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// How many entries and remembered places there are (for tests of the bounds).
    var sizes: (entries: Int, places: Int) {
        state.withLock { ($0.entries.count, $0.order.count - $0.head) }
    }

    private static func key(_ id: String, _ tenant: Tenant) -> String { tenant.name + "\u{1F}" + id }

    func entity(_ id: String, tenant: Tenant) -> Entity? {
        state.withLock { $0.entries[Self.key(id, tenant)]?.entity }
    }

    /// The cached ones among `ids`.
    func entities(_ ids: [String], tenant: Tenant) -> [String: Entity] {
        state.withLock { state in
            var found: [String: Entity] = [:]
            for id in ids {
                if let entry = state.entries[Self.key(id, tenant)] { found[id] = entry.entity }
            }
            return found
        }
    }

    /// Records committed states: an entity, or nil for one deleted.
    func store(_ states: [(id: String, entity: Entity?)], tenant: Tenant) {
        guard capacity > 0 else { return }
        // The states replaced and forgotten, freed on another thread: the caller is the single writer.
        var dropped: [Entity] = []
        defer { if !dropped.isEmpty { releaseInBackground(dropped) } }
        state.withLock { state in
            for (id, entity) in states {
                let key = Self.key(id, tenant)
                guard let entity else {
                    if let old = state.entries.removeValue(forKey: key) { dropped.append(old.entity) }
                    continue
                }
                state.writes += 1
                if let old = state.entries.updateValue((entity, state.writes), forKey: key) { dropped.append(old.entity) }
                state.order.append((key, state.writes))
            }
            // Forget the oldest (by the key's hash their buckets are spread, so lookups stay short).
            while state.entries.count > capacity, state.head < state.order.count {
                let (key, written) = state.order[state.head]
                state.head += 1
                if state.entries[key]?.written == written, let old = state.entries.removeValue(forKey: key) { dropped.append(old.entity) }
            }
            // Entries written again leave stale places behind: drop them once they outnumber the live ones.
            if state.order.count - state.head > 2 * max(capacity, state.entries.count) {
                let live = state.order[state.head...].filter { state.entries[$0.key]?.written == $0.written }
                state.order = live
                state.head = 0
            } else if state.head > capacity {
                state.order.removeFirst(state.head)
                state.head = 0
            }
        }
    }

    /// The entity as the database gives it back once written: times at the millisecond, numbers as the JSON
    /// text has them (an integral real reads back as an integer).
    static func stored(_ entity: Entity, now: Date) -> Entity {
        func rounded(_ date: Date) -> Date { Timestamp.parse(Timestamp.string(date)) ?? date }
        return Entity(
            id: entity.id, types: entity.types,
            attributes: entity.attributes.mapValues { instances in
                // Most instances read back as they are: only those with an integral real are built again.
                instances.map { instance in instance.values.allSatisfy(JSONCoding.isAsWritten) ? instance : instance.mapValues(JSONCoding.asWritten) }
            },
            createdAt: rounded(entity.createdAt ?? now), modifiedAt: rounded(entity.modifiedAt ?? now))
    }
}
