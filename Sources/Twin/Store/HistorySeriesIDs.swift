import CityKit
import Storage
import Synchronization

/// SQLite: the ids (and recorded types) of the history series written lately, so that the next instances of
/// a series are inserted with its id, without looking the series up or writing it again. One per database,
/// shared by the stores on it (`Database.attachment`); PostgreSQL has none (other copies write there too).
///
/// Only committed series are known. A write's new ids are added once its transaction has committed (`add`),
/// and not at all if series were forgotten since that write looked its series up: a deleted series' id may
/// be given to another. Deleting series forgets their entities inside the deleting transaction, before it
/// commits; a write that rolls back has added nothing.
final class HistorySeriesIDs: Sendable {
    struct EntityKey: Hashable, Sendable {
        let tenant: String
        let entityID: String
    }

    struct AttributeKey: Hashable, Sendable {
        let name: String
        let datasetID: String
    }

    struct Known: Sendable {
        let id: Int64
        /// The series' `types` column.
        let types: String
    }

    /// What a write learnt, for `add` once it has committed.
    struct Learnt: Sendable {
        let generation: Int
        var series: [(entity: EntityKey, attribute: AttributeKey, known: Known)] = []
    }

    private struct State {
        /// Moves on whenever series are forgotten.
        var generation = 0
        /// Two generations of entities: a lookup finds either, an entity found in the older moves to the
        /// newer, and once the newer holds `capacity` entities it becomes the older (the oldest are dropped).
        var recent: [EntityKey: [AttributeKey: Known]] = [:]
        var older: [EntityKey: [AttributeKey: Known]] = [:]

        mutating func insertRecent(_ entity: EntityKey, _ attributes: [AttributeKey: Known], capacity: Int) {
            if recent[entity] == nil, recent.count >= capacity {
                // The dropped generation is freed off the writer's thread.
                releaseInBackground(older)
                older = recent
                recent = [:]
            }
            recent[entity] = attributes
        }
    }

    private let state = Mutex(State())
    /// Entities per generation.
    let capacity: Int

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// The one of `database` if it is SQLite.
    static func of(_ database: Database) -> HistorySeriesIDs? {
        database.kind == .sqlite ? database.attachment { HistorySeriesIDs() } : nil
    }

    /// The known id of each series whose recorded types are `types[i]` (nil where unknown or retyped), and
    /// the generation to hand to `learnt`.
    func lookUp(tenant: String, _ series: [History.SeriesKey], types: [String]) -> (generation: Int, ids: [Int64?]) {
        state.withLock { state in
            var ids = [Int64?](repeating: nil, count: series.count)
            // An entity's series come one after another: its attributes are found once for them.
            var current: (entityID: String, attributes: [AttributeKey: Known]?)?
            for (i, key) in series.enumerated() {
                if current?.entityID != key.entityID {
                    let entity = EntityKey(tenant: tenant, entityID: key.entityID)
                    var attributes = state.recent[entity]
                    if attributes == nil, let old = state.older.removeValue(forKey: entity) {
                        attributes = old
                        state.insertRecent(entity, old, capacity: capacity)
                    }
                    current = (key.entityID, attributes)
                }
                if let known = current?.attributes?[AttributeKey(name: key.name, datasetID: key.datasetID)], known.types == types[i] {
                    ids[i] = known.id
                }
            }
            return (state.generation, ids)
        }
    }

    /// Adds what a committed write learnt, unless series were forgotten after it looked its series up.
    func add(_ learnt: Learnt) {
        guard !learnt.series.isEmpty else { return }
        state.withLock { state in
            guard state.generation == learnt.generation else { return }
            for (entity, attribute, known) in learnt.series {
                var attributes = state.recent[entity] ?? state.older.removeValue(forKey: entity) ?? [:]
                attributes[attribute] = known
                state.insertRecent(entity, attributes, capacity: capacity)
            }
        }
    }

    /// Forgets the series of these entities (their history is being deleted).
    func forget(tenant: String, entityIDs: [String]) {
        state.withLock { state in
            state.generation += 1
            for id in entityIDs {
                let entity = EntityKey(tenant: tenant, entityID: id)
                state.recent[entity] = nil
                state.older[entity] = nil
            }
        }
    }
}
