import CityKit
import Foundation
import SQLKit
import Storage
import Testing

@testable import Twin

/// The hourly rollups answer every aggregation they can exactly as walking the instances does, on SQLite
/// and PostgreSQL: after writes, late readings, changed and deleted instances, retention cutting an hour,
/// deleted attributes and entities, and for history kept before the rollups existed.
@Suite struct HistoryRollupTests {
    let core = CoreContext.context
    static let temperature = "https://uri.etsi.org/ngsi-ld/default-context/temperature"
    static let entity = "urn:ngsi-ld:WeatherObserved:nanshan"
    static let start = Timestamp.parse("2026-11-20T00:00:00Z")!

    static func at(_ minutes: Double) -> Date { start.addingTimeInterval(minutes * 60) }

    /// Three days of temperatures every 7 minutes (hours of 8 or 9 readings), a day of a second dataset, and
    /// a text status every 30 minutes (counted, no numbers).
    static var body: JSON {
        let temperatures: [JSON] = stride(from: 0.0, to: 3 * 1440, by: 7).map { m in
            ["type": "Property", "value": .double((180 + 60 * sin(m / 300) + m.truncatingRemainder(dividingBy: 13)).rounded() / 10), "observedAt": .string(Timestamp.string(at(m)))]
        }
        let backup: [JSON] = stride(from: 0.0, to: 1440, by: 20).map { m in
            ["type": "Property", "value": .double(m / 100), "datasetId": "urn:ngsi-ld:Dataset:backup", "observedAt": .string(Timestamp.string(at(m)))]
        }
        let status: [JSON] = stride(from: 0.0, to: 3 * 1440, by: 30).map { m in
            ["type": "Property", "value": .string(Int(m) % 120 == 0 ? "正常" : "维护中"), "observedAt": .string(Timestamp.string(at(m)))]
        }
        return ["id": .string(entity), "type": "WeatherObserved", "temperature": .array(temperatures + backup), "status": .array(status)]
    }

    /// The time ranges compared: none, before and between ending on and inside an hour, after a whole hour,
    /// a range inside one hour, and ranges starting inside an hour (periods then start off the hour and walk
    /// the instances; the whole range still uses the rollups).
    static let ranges: [TimeRelation?] = [
        nil, .before(at(600)), .before(at(610)), .after(at(120)), .between(at(60), at(2880)), .between(at(60), at(1501)), .between(at(600), at(640)),
        .after(at(125)), .between(at(61), at(2000)),
    ]
    /// Hours, three hours, a day, and one period spanning the range.
    static let periods: [Int64?] = [3_600_000_000, 3 * 3_600_000_000, 86_400_000_000, nil]
    static let methods: [AggregationMethod] = [.totalCount, .sum, .avg, .min, .max, .stddev, .sumsq]

    func expectSameAnswers(_ history: SQLHistoryStore, _ step: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for range in Self.ranges {
            var query = TemporalQuery()
            query.timerel = range
            for period in Self.periods {
                let aggregation = AggregationQuery(methods: Self.methods, period: period)
                var origin: Int64 = 0
                if case .after(let t) = range { origin = History.micros(t) }
                if case .between(let t, _) = range { origin = History.micros(t) }
                #expect(HistoryRollup.answers(query, aggregation, origin: origin) == (period == nil || origin % 3_600_000_000 == 0), sourceLocation: sourceLocation)
                let rolled = try await history.aggregate([Self.entity], tenant: .default, query: query, aggregation: aggregation, rollups: true)
                let walked = try await history.aggregate([Self.entity], tenant: .default, query: query, aggregation: aggregation, rollups: false)
                let what = "\(step), \(String(describing: range)), period \(period.map { "\($0 / 3_600_000_000) h" } ?? "whole")"
                #expect(rolled.map(\.name) == walked.map(\.name), "\(what)", sourceLocation: sourceLocation)
                for (r, w) in zip(rolled, walked) {
                    #expect(r.datasetID == w.datasetID, sourceLocation: sourceLocation)
                    #expect(r.buckets.map(\.start) == w.buckets.map(\.start), "\(what): \(r.name)", sourceLocation: sourceLocation)
                    #expect(r.buckets.map(\.end) == w.buckets.map(\.end), sourceLocation: sourceLocation)
                    for (a, b) in zip(r.buckets, w.buckets) {
                        for method in Self.methods {
                            let (x, y) = (a.values[method] ?? .null, b.values[method] ?? .null)
                            if let x = x.numberValue, let y = y.numberValue {
                                #expect(abs(x - y) <= 1e-9 * max(1, abs(y)), "\(what): \(r.name) \(method) at \(a.start): \(x) vs \(y)", sourceLocation: sourceLocation)
                            } else {
                                #expect(x == .null && y == .null, "\(what): \(r.name) \(method) at \(a.start): \(x) vs \(y)", sourceLocation: sourceLocation)
                            }
                        }
                    }
                }
            }
        }
    }

    func rollupRows(_ database: Database) async throws -> Int {
        try await database.read { db in try await db.raw("SELECT COUNT(*) AS n FROM history_hours").first()?.decode(column: "n", as: Int.self) ?? -1 }
    }

    /// A fresh database of `kind` with the readings written through the temporal API.
    func withReadings(_ kind: DialectKind, _ body: @Sendable (Database, EntityService, TemporalService, SQLHistoryStore) async throws -> Void) async throws {
        try await TestDatabases.with(kind, migrations: TwinMigrations.all) { database, _ in
            let entities = EntityService(store: try await SQLEntityStore.open(database, keepHistoryOfDeletedEntities: false))
            let history = try await SQLHistoryStore.open(database)
            let temporal = TemporalService(history: history, entities: entities, instanceLimit: 1000)
            _ = try await temporal.create(Self.body, context: core, tenant: .default)
            try await body(database, entities, temporal, history)
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func rollupsAnswerAsTheInstancesDo(_ kind: DialectKind) async throws {
        try await withReadings(kind) { database, entities, temporal, history in
            #expect(try await rollupRows(database) == 72 + 24 + 72)
            try await expectSameAnswers(history, "written")

            // A late reading, lower than any, lands in an hour already rolled up; updates through the entity API too.
            try await temporal.append(Self.entity, ["temperature": ["type": "Property", "value": -3.5, "observedAt": .string(Timestamp.string(Self.at(605)))]], context: core, tenant: .default)
            _ = try await entities.create(
                ["id": .string(Self.entity), "type": "WeatherObserved", "temperature": ["type": "Property", "value": 99.5, "observedAt": .string(Timestamp.string(Self.at(2000)))]],
                context: core, tenant: .default)
            try await expectSameAnswers(history, "late readings")

            // An instance changed (value and time, into another hour), another deleted.
            let instances = try await history.history(of: [Self.entity], tenant: .default, query: TemporalQuery()).first { $0.name == Self.temperature && $0.datasetID == nil }?.instances ?? []
            #expect(instances.count > 600)
            try await temporal.modifyInstance(
                Self.entity, attribute: "temperature", instanceId: try #require(instances[100]["instanceId"]?.stringValue),
                ["value": 55.5, "observedAt": .string(Timestamp.string(Self.at(1234)))], context: core, tenant: .default)
            try await temporal.deleteInstance(Self.entity, attribute: "temperature", instanceId: try #require(instances[200]["instanceId"]?.stringValue), context: core, tenant: .default)
            try await expectSameAnswers(history, "changed and deleted")

            // Retention cuts an hour in two.
            #expect(try await history.deleteObserved(before: Self.at(330)) > 0)
            try await expectSameAnswers(history, "retention")

            // A deleted attribute's history takes its rollups with it, and so does a deleted entity's.
            let before = try await rollupRows(database)
            try await temporal.deleteAttribute(Self.entity, attribute: "status", datasetId: nil, deleteAll: false, context: core, tenant: .default)
            #expect(try await rollupRows(database) == before - (72 - 5))
            try await expectSameAnswers(history, "attribute deleted")
            try await temporal.delete(Self.entity, tenant: .default)
            #expect(try await rollupRows(database) == 0)
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func historyKeptBeforeTheRollupsIsRolledUp(_ kind: DialectKind) async throws {
        try await withReadings(kind) { database, _, _, history in
            // The database as it was before the rollups: their migration undone, the instances kept.
            try await database.write { db in
                if kind == .postgres { try await db.raw("DROP FUNCTION citytwin_history_roll_up() CASCADE").run() }
                try await db.raw("DROP TABLE history_hours").run()
                try await db.raw("DELETE FROM schema_migrations WHERE id = 'twin-0008-history-hours'").run()
            }
            #expect(try await Migrator(TwinMigrations.all).run(on: database) == ["twin-0008-history-hours"])
            #expect(try await rollupRows(database) == 72 + 24 + 72)
            try await expectSameAnswers(history, "migrated")
        }
    }
}
