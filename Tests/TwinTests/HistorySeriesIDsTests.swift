import CityKit
import Foundation
import Storage
import Testing

@testable import Twin

/// The series ids SQLite's history writes keep in memory: only committed series are known, a deleted
/// series is forgotten (its id may be given to another), and history always lands in its own series.
@Suite struct HistorySeriesIDsTests {
    let core = CoreContext.context
    static let pm25 = "https://uri.etsi.org/ngsi-ld/default-context/pm25"

    typealias IDs = HistorySeriesIDs

    static func learnt(_ generation: Int, _ entity: String, _ name: String, id: Int64, types: String = #"["T"]"#) -> IDs.Learnt {
        IDs.Learnt(generation: generation, series: [(IDs.EntityKey(tenant: "", entityID: entity), IDs.AttributeKey(name: name, datasetID: ""), IDs.Known(id: id, types: types))])
    }

    static func key(_ entity: String, _ name: String) -> History.SeriesKey { History.SeriesKey(entityID: entity, name: name, datasetID: "") }

    @Test func onlyWhatIsAddedBeforeAForgettingIsKnown() {
        let ids = IDs(capacity: 2)
        let start = ids.lookUp(tenant: "", [Self.key("a", "p")], types: [#"["T"]"#])
        #expect(start.ids == [nil])
        ids.add(Self.learnt(start.generation, "a", "p", id: 7))
        #expect(ids.lookUp(tenant: "", [Self.key("a", "p"), Self.key("a", "q")], types: [#"["T"]"#, #"["T"]"#]).ids == [7, nil])
        // Another tenant, other types: not known.
        #expect(ids.lookUp(tenant: "other", [Self.key("a", "p")], types: [#"["T"]"#]).ids == [nil])
        #expect(ids.lookUp(tenant: "", [Self.key("a", "p")], types: [#"["T","U"]"#]).ids == [nil])
        // A write that looked up before a forgetting adds nothing, even for other entities.
        let before = ids.lookUp(tenant: "", [Self.key("b", "p")], types: [#"["T"]"#]).generation
        ids.forget(tenant: "", entityIDs: ["a"])
        #expect(ids.lookUp(tenant: "", [Self.key("a", "p")], types: [#"["T"]"#]).ids == [nil])
        ids.add(Self.learnt(before, "b", "p", id: 8))
        #expect(ids.lookUp(tenant: "", [Self.key("b", "p")], types: [#"["T"]"#]).ids == [nil])
    }

    @Test func theOldestEntitiesAreDroppedPastTwoGenerations() {
        let ids = IDs(capacity: 2)
        let g = ids.lookUp(tenant: "", [], types: []).generation
        for (n, entity) in ["a", "b", "c", "d", "e"].enumerated() { ids.add(Self.learnt(g, entity, "p", id: Int64(n + 1))) }
        let found = ids.lookUp(tenant: "", ["a", "b", "c", "d", "e"].map { Self.key($0, "p") }, types: Array(repeating: #"["T"]"#, count: 5)).ids
        #expect(found == [nil, nil, 3, 4, 5])
    }

    func withServices(_ kind: DialectKind, _ body: @Sendable (EntityService, TemporalService, SQLHistoryStore) async throws -> Void) async throws {
        try await TestDatabases.with(kind, migrations: TwinMigrations.all) { database, _ in
            let entities = EntityService(store: try await SQLEntityStore.open(database))
            let history = try await SQLHistoryStore.open(database)
            try await body(entities, TemporalService(history: history, entities: entities, instanceLimit: 1000), history)
        }
    }

    func values(_ history: SQLHistoryStore, _ id: String) async throws -> [Double] {
        try await history.history(of: [id], tenant: .default, query: TemporalQuery())
            .filter { $0.name == Self.pm25 }.flatMap { $0.instances.compactMap { $0["value"]?.numberValue } }
    }

    static func station(_ name: String, pm25: Double) -> JSON {
        ["id": .string("urn:ngsi-ld:AirQualityObserved:\(name)"), "type": "AirQualityObserved", "pm25": ["type": "Property", "value": .double(pm25)]]
    }

    /// SQLite gives a deleted series' id to the next new one: the entity made after a deletion must not
    /// receive the deleted entity's instances, nor the deleted entity, made again, the newcomer's.
    @Test(arguments: TestDatabases.kinds)
    func historyStaysWithItsEntityAcrossDeletions(_ kind: DialectKind) async throws {
        try await withServices(kind) { entities, temporal, history in
            let a = try await entities.create(Self.station("a", pm25: 1001), context: core, tenant: .default)
            try await entities.partialUpdate(a, attribute: "pm25", ["value": 1002], context: core, tenant: .default)
            try await entities.delete(a, tenant: .default)
            let b = try await entities.create(Self.station("b", pm25: 2001), context: core, tenant: .default)
            _ = try await entities.create(Self.station("a", pm25: 1003), context: core, tenant: .default)
            try await entities.partialUpdate(a, attribute: "pm25", ["value": 1004], context: core, tenant: .default)
            try await entities.partialUpdate(b, attribute: "pm25", ["value": 2002], context: core, tenant: .default)
            // The temporal API's writes share what the entity store knows.
            try await temporal.append(b, ["pm25": ["type": "Property", "value": 2003, "observedAt": "2030-01-01T00:00:00Z"]], context: core, tenant: .default)
            #expect(try await values(history, a) == [1003, 1004])
            #expect(try await values(history, b) == [2001, 2002, 2003])
            // An attribute's history deleted through the temporal API: its next instances make a new series.
            try await temporal.deleteAttribute(a, attribute: "pm25", datasetId: nil, deleteAll: false, context: core, tenant: .default)
            let c = try await entities.create(Self.station("c", pm25: 3001), context: core, tenant: .default)
            try await entities.partialUpdate(a, attribute: "pm25", ["value": 1005], context: core, tenant: .default)
            try await entities.partialUpdate(c, attribute: "pm25", ["value": 3002], context: core, tenant: .default)
            #expect(try await values(history, a) == [1005])
            #expect(try await values(history, c) == [3001, 3002])
            // The whole history of an entity deleted through the temporal API.
            try await temporal.delete(b, tenant: .default)
            let d = try await entities.create(Self.station("d", pm25: 4001), context: core, tenant: .default)
            try await entities.partialUpdate(b, attribute: "pm25", ["value": 2004], context: core, tenant: .default)
            #expect(try await values(history, b) == [2004])
            #expect(try await values(history, d) == [4001])
        }
    }

    /// Writes, deletions and re-creations of a few entities at once, merged into shared transactions: every
    /// instance (its value names its entity: n × 1000 + k) stays in its own entity's history.
    @Test(arguments: TestDatabases.kinds)
    func concurrentDeletionsKeepEveryInstanceWithItsEntity(_ kind: DialectKind) async throws {
        try await withServices(kind) { entities, _, history in
            let core = self.core
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 1...6 {
                    group.addTask {
                        let id = "urn:ngsi-ld:AirQualityObserved:s\(n)"
                        // Each entity's own steps succeed in turn: none is allowed to fail.
                        for k in 0..<40 {
                            let value = Double(n * 1000 + k)
                            switch k % 5 {
                            case 0: _ = try await entities.create(Self.station("s\(n)", pm25: value), context: core, tenant: .default)
                            case 4: try await entities.delete(id, tenant: .default)
                            default: try await entities.partialUpdate(id, attribute: "pm25", ["value": .double(value)], context: core, tenant: .default)
                            }
                        }
                        // The last round's history: made again, updated once.
                        _ = try await entities.create(Self.station("s\(n)", pm25: Double(n * 1000 + 900)), context: core, tenant: .default)
                        try await entities.partialUpdate(id, attribute: "pm25", ["value": .double(Double(n * 1000 + 901))], context: core, tenant: .default)
                    }
                }
                try await group.waitForAll()
            }
            for n in 1...6 {
                #expect(try await values(history, "urn:ngsi-ld:AirQualityObserved:s\(n)") == [Double(n * 1000 + 900), Double(n * 1000 + 901)])
            }
        }
    }
}
