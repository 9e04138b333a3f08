import CityKit
import Foundation
import SQLKit
import Storage
import Testing

@testable import Twin

/// The entity service over the SQL store, on SQLite and on PostgreSQL.
@Suite struct EntityStoreTests {
    let core = CoreContext.context

    func withService(_ kind: DialectKind, _ body: @Sendable (EntityService) async throws -> Void) async throws {
        try await withService(kind) { service, _ in try await body(service) }
    }

    func withService(_ kind: DialectKind, _ body: @Sendable (EntityService, Database) async throws -> Void) async throws {
        try await TestDatabases.with(kind, migrations: TwinMigrations.all) { database, _ in
            try await body(EntityService(store: try await SQLEntityStore.open(database)), database)
        }
    }

    static func sensor(_ n: Int, pm25: JSON, district: String, types: JSON = "AirQualityObserved") -> JSON {
        [
            "id": .string("urn:ngsi-ld:AirQualityObserved:\(n)"), "type": types,
            "pm25": ["type": "Property", "value": pm25, "observedAt": .string("2026-11-25T0\(n % 10):00:00Z")],
            "address": ["type": "Property", "value": ["district": .string(district), "city": "深圳"]],
            "refDevice": ["type": "Relationship", "object": .string("urn:ngsi-ld:Device:\(n)")],
        ]
    }

    func ids(_ service: EntityService, _ p: EntityService.QueryParameters) async throws -> [String] {
        let (plan, _) = try service.plan(p, context: core)
        do {
            return try await service.query(plan, tenant: .default).entities.map(\.id)
        } catch {
            Issue.record("query \(p.q ?? "") failed: \(String(reflecting: error))")
            return []
        }
    }

    func q(_ text: String) -> EntityService.QueryParameters {
        var p = EntityService.QueryParameters()
        p.type = "AirQualityObserved"
        p.q = text
        return p
    }

    /// Concurrent updates of one entity are merged into shared transactions, yet none is lost: not from the
    /// current state, and not from the history (each update is its own instance).
    @Test(arguments: TestDatabases.kinds)
    func concurrentUpdatesOfOneEntityAreAllKept(_ kind: DialectKind) async throws {
        try await withService(kind) { service, database in
            let id = try await service.create(Self.sensor(7, pm25: 0, district: "南山区"), context: core, tenant: .default)
            let store = service.store
            let name = "https://uri.etsi.org/ngsi-ld/default-context/pm25"
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<100 {
                    group.addTask {
                        let results = try await store.apply([id], tenant: .default) { _, entity throws(NGSIError) in
                            guard var entity else { throw .notFound(id) }
                            let n = Int64(entity.attributes[name]?.first?["value"]?.numberValue ?? -1)
                            entity.attributes[name] = [["type": "Property", "value": .integer(n + 1)]]
                            return .put(entity)
                        }
                        if case .failure(let error) = results[0] { throw error }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await service.retrieve(id, tenant: .default).attributes[name]?.first?["value"] == .integer(100))
            let values = try await database.read { db in
                try await db.raw("SELECT h.num FROM history h JOIN history_series s ON s.id = h.series WHERE s.name = \(bind: name) ORDER BY h.instance").all()
                    .map { try $0.decode(column: "num", as: Double.self) }
            }
            #expect(values == (0...100).map(Double.init))
        }
    }

    /// The type index follows every change of an entity's types: types added, types dropped, and an entity
    /// deleted and made again within one batch keeps exactly its new types.
    @Test(arguments: TestDatabases.kinds)
    func typeQueriesFollowChangedTypes(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            func typed(_ type: String) async throws -> [String] {
                var p = EntityService.QueryParameters()
                p.type = type
                return try await ids(service, p)
            }
            let id = try await service.create(Self.sensor(3, pm25: 5, district: "罗湖区", types: "Streetlight"), context: core, tenant: .default)
            try await service.replace(id, Self.sensor(3, pm25: 6, district: "罗湖区", types: ["Streetlight", "ManholeCover"]), context: core, tenant: .default)
            #expect(try await typed("Streetlight") == [id])
            #expect(try await typed("ManholeCover") == [id])
            try await service.replace(id, Self.sensor(3, pm25: 7, district: "罗湖区", types: "ManholeCover"), context: core, tenant: .default)
            #expect(try await typed("Streetlight") == [])
            #expect(try await typed("ManholeCover") == [id])
            // Deleted and made again in one transaction.
            var remade = try await service.retrieve(id, tenant: .default)
            remade.types = ["https://uri.etsi.org/ngsi-ld/default-context/ParkingSpot"]
            let replacement = remade
            let results = try await service.store.apply([id, id], tenant: .default) { _, entity throws(NGSIError) in
                entity == nil ? .put(replacement) : .delete
            }
            #expect(results.count == 2)
            #expect(try await typed("ManholeCover") == [])
            #expect(try await typed("ParkingSpot") == [id])
        }
    }

    /// `q` on a LanguageProperty: equality finds any language; `name[zh]` compares one language.
    @Test(arguments: TestDatabases.kinds)
    func languagePropertiesAreQueriedInEveryLanguage(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            for (n, zh, en) in [(1, "福田站", "Futian station"), (2, "南山站", "Nanshan station")] {
                var sensor = Self.sensor(n, pm25: 10, district: "深圳")
                sensor = .object(sensor.objectValue!.merging(["name": ["type": "LanguageProperty", "languageMap": ["zh": .string(zh), "en": .string(en)]]]) { a, _ in a })
                _ = try await service.create(sensor, context: core, tenant: .default)
            }
            #expect(try await ids(service, q(#"name=="福田站""#)) == ["urn:ngsi-ld:AirQualityObserved:1"])
            #expect(try await ids(service, q(#"name=="Nanshan station""#)) == ["urn:ngsi-ld:AirQualityObserved:2"])
            #expect(try await ids(service, q(#"name[zh]=="南山站""#)) == ["urn:ngsi-ld:AirQualityObserved:2"])
            #expect(try await ids(service, q(#"name[en]=="南山站""#)) == [])
            #expect(try await ids(service, q(#"name=="罗湖站""#)) == [])
        }
    }

    /// `q` on an array value matches when any element does.
    @Test(arguments: TestDatabases.kinds)
    func arrayValuesMatchElementWise(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            for (n, tags, levels) in [(1, ["公园", "湖"], [1, 2]), (2, ["广场"], [3])] {
                var sensor = Self.sensor(n, pm25: 10, district: "深圳")
                sensor = .object(sensor.objectValue!.merging([
                    "tags": ["type": "Property", "value": .array(tags.map(JSON.string))],
                    "levels": ["type": "Property", "value": .array(levels.map { JSON.integer(Int64($0)) })],
                ]) { a, _ in a })
                _ = try await service.create(sensor, context: core, tenant: .default)
            }
            #expect(try await ids(service, q(#"tags=="湖""#)) == ["urn:ngsi-ld:AirQualityObserved:1"])
            #expect(try await ids(service, q(#"tags=="广场","湖""#)) == ["urn:ngsi-ld:AirQualityObserved:1", "urn:ngsi-ld:AirQualityObserved:2"])
            #expect(try await ids(service, q("levels>=3")) == ["urn:ngsi-ld:AirQualityObserved:2"])
            #expect(try await ids(service, q("levels==2")) == ["urn:ngsi-ld:AirQualityObserved:1"])
            #expect(try await ids(service, q(#"tags=="山""#)) == [])
        }
    }

    /// Racing creates of one id: exactly one wins, the others are told it already exists.
    @Test(arguments: TestDatabases.kinds)
    func racingCreatesOfOneIDHaveOneWinner(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            let core = self.core
            let outcomes = await withTaskGroup(of: Bool?.self) { group in
                for n in 0..<40 {
                    group.addTask {
                        do {
                            _ = try await service.create(Self.sensor(9, pm25: .integer(Int64(n)), district: "罗湖区"), context: core, tenant: .default)
                            return true
                        } catch let error as NGSIError where error.kind == .alreadyExists {
                            return false
                        } catch {
                            return nil
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == true }.count == 1)
            #expect(outcomes.filter { $0 == false }.count == 39)
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func createRetrieveAndConflict(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            let id = try await service.create(Self.sensor(1, pm25: 35, district: "福田区"), context: core, tenant: .default)
            let entity = try await service.retrieve(id, tenant: .default)
            #expect(entity.types == ["https://uri.etsi.org/ngsi-ld/default-context/AirQualityObserved"])
            let pm25 = entity.attributes["https://uri.etsi.org/ngsi-ld/default-context/pm25"]?.first
            #expect(pm25?["value"] == .integer(35))
            #expect(pm25?["createdAt"] != nil)
            await #expect { try await service.create(Self.sensor(1, pm25: 1, district: "x"), context: core, tenant: .default) } throws: {
                ($0 as? NGSIError)?.kind == .alreadyExists
            }
            // The failed create changed nothing.
            #expect(try await service.retrieve(id, tenant: .default).attributes["https://uri.etsi.org/ngsi-ld/default-context/pm25"]?.first?["value"] == .integer(35))
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func qQueriesRunInSQL(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            let body: JSON = .array([
                Self.sensor(1, pm25: 12, district: "福田区"), Self.sensor(2, pm25: 35.5, district: "南山区"),
                Self.sensor(3, pm25: 80, district: "福田区"), Self.sensor(4, pm25: "n/a", district: "罗湖区"),
            ])
            let created = try await service.batchCreate(body, context: core, tenant: .default)
            #expect(created.created.count == 4 && created.errors.isEmpty)
            func id(_ n: Int) -> String { "urn:ngsi-ld:AirQualityObserved:\(n)" }
            #expect(try await ids(service, q("pm25>30")) == [id(2), id(3)])
            #expect(try await ids(service, q("pm25==12,80")) == [id(1), id(3)])
            #expect(try await ids(service, q("pm25==10..40")) == [id(1), id(2)])
            #expect(try await ids(service, q("pm25==\"n/a\"")) == [id(4)])
            #expect(try await ids(service, q("pm25<20|pm25>50")) == [id(1), id(3)])
            #expect(try await ids(service, q("address[district]==\"福田区\";pm25>50")) == [id(3)])
            #expect(try await ids(service, q("address[district]~=南山")) == [id(2)])
            #expect(try await ids(service, q("refDevice==urn:ngsi-ld:Device:4")) == [id(4)])
            #expect(try await ids(service, q("pm25.observedAt>=2026-11-25T03:00:00Z")) == [id(3), id(4)])
            #expect(try await ids(service, q("!missing;pm25!=12")) == [id(2), id(3), id(4)])
            // The same entity twice in one batch: its last state is what queries see.
            _ = try await service.batchUpsert([Self.sensor(1, pm25: 500, district: "福田区"), Self.sensor(1, pm25: 600, district: "福田区")], mode: .replace, context: core, tenant: .default)
            #expect(try await ids(service, q("pm25==500")).isEmpty)
            #expect(try await ids(service, q("pm25==600")) == [id(1)])
            _ = try await service.batchUpsert([Self.sensor(1, pm25: 12, district: "福田区")], mode: .replace, context: core, tenant: .default)
            var pattern = EntityService.QueryParameters()
            pattern.idPattern = ".*:[12]$"
            #expect(try await ids(service, pattern) == [id(1), id(2)])
            var paged = q("pm25")
            paged.limit = "2"
            paged.offset = "1"
            paged.count = true
            let (plan, _) = try service.plan(paged, context: core)
            let page = try await service.query(plan, tenant: .default)
            #expect(page.entities.map(\.id) == [id(2), id(3)])
            #expect(page.count == 4)
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func regularExpressionsReadAsECMAScriptOnBothBackends(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            // given streets whose names differ where ECMAScript and PostgreSQL's own syntax read a pattern apart
            func street(_ id: String, _ name: String) -> JSON {
                ["id": .string("urn:ngsi-ld:Street:\(id)"), "type": "Street", "name": ["type": "Property", "value": .string(name)]]
            }
            let body: JSON = .array([street("A1", "Shennan Road"), street("A2", "Shennan Roadside"), street("B1", "深南\n大道"), street("B2", "深南 大道")])
            let created = try await service.batchCreate(body, context: core, tenant: .default)
            #expect(created.created.count == 4)
            func id(_ s: String) -> String { "urn:ngsi-ld:Street:\(s)" }
            func street(q text: String) -> EntityService.QueryParameters {
                var p = EntityService.QueryParameters()
                p.type = "Street"
                p.q = text
                return p
            }
            // then \b is a word boundary, . stops at a newline, named groups are groups, \xhh is two digits,
            // lookbehinds look behind
            #expect(try await ids(service, street(q: "name~=Road\\b")) == [id("A1")])
            #expect(try await ids(service, street(q: "name~=Road\\B")) == [id("A2")])
            #expect(try await ids(service, street(q: "name~=深南.大道")) == [id("B2")])
            #expect(try await ids(service, street(q: "name~=(?<road>Road)side")) == [id("A2")])
            #expect(try await ids(service, street(q: "name~=(?<=Shennan )Road$")) == [id("A1")])
            #expect(try await ids(service, street(q: "name~=(?<!\\n)大道")) == [id("B2")])
            #expect(try await ids(service, street(q: "name~=(?<=Shennan)Road")) == [])
            var pattern = EntityService.QueryParameters()
            pattern.idPattern = "Street:\\x411$"
            #expect(try await ids(service, pattern) == [id("A1")])
            pattern.idPattern = "Street:B[12]$"
            #expect(try await ids(service, pattern) == [id("B1"), id("B2")])
            pattern.idPattern = "(?<=Street:)A1$"
            #expect(try await ids(service, pattern) == [id("A1")])
        }
    }

    /// On SQLite the store keeps what it last wrote in memory; what it answers from there is what the
    /// database answers.
    @Test(arguments: TestDatabases.kinds)
    func cachedEntitiesReadAsTheDatabaseHasThem(_ kind: DialectKind) async throws {
        try await TestDatabases.with(kind, migrations: TwinMigrations.all) { database, _ in
            let cached = EntityService(store: try await SQLEntityStore.open(database))
            let uncached = try await SQLEntityStore.open(database, cachedEntities: 0)
            // given entities written with integral reals, nested values, Chinese text and sub-attributes
            let body: JSON = .array((1...3).map { n in
                [
                    "id": .string("urn:ngsi-ld:WaterQualityObserved:\(n)"), "type": "WaterQualityObserved",
                    "temperature": ["type": "Property", "value": .double(Double(n) * 10), "unitCode": "CEL",
                                    "accuracy": ["type": "Property", "value": .double(0.5)]],
                    "site": ["type": "Property", "value": ["river": "深圳河", "depth": .double(2.0), "points": [.double(1.0), .double(1.5)]]],
                ]
            })
            _ = try await cached.batchCreate(body, context: core, tenant: .default)
            // when they are patched, one of them refused (no such attribute), and one deleted
            try await cached.partialUpdate("urn:ngsi-ld:WaterQualityObserved:1", attribute: "temperature", ["value": .double(12.0)], context: core, tenant: .default)
            await #expect(throws: NGSIError.self) {
                try await cached.partialUpdate("urn:ngsi-ld:WaterQualityObserved:2", attribute: "missing", ["value": 1], context: core, tenant: .default)
            }
            _ = try await cached.batchDelete(["urn:ngsi-ld:WaterQualityObserved:3"], tenant: .default)
            // then each retrieval equals the database's, and the deleted one is gone from both
            for n in 1...3 {
                let id = "urn:ngsi-ld:WaterQualityObserved:\(n)"
                let fromCache = try await cached.store.retrieve(id, tenant: .default)
                let fromDatabase = try await uncached.retrieve(id, tenant: .default)
                #expect(fromCache == fromDatabase, "entity \(n)")
                #expect((fromCache == nil) == (n == 3))
            }
            let temperature = try await cached.store.retrieve("urn:ngsi-ld:WaterQualityObserved:1", tenant: .default)?.attributes[core.expand("temperature")]?.first
            #expect(temperature?["value"] == .integer(12))
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func multiTypeAndTypeExpressions(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            _ = try await service.create(Self.sensor(1, pm25: 1, district: "a", types: ["Streetlight", "Device"]), context: core, tenant: .default)
            _ = try await service.create(Self.sensor(2, pm25: 1, district: "a", types: "Streetlight"), context: core, tenant: .default)
            func types(_ t: String) async throws -> [String] {
                var p = EntityService.QueryParameters()
                p.type = t
                return try await ids(service, p)
            }
            #expect(try await types("Device").count == 1)
            #expect(try await types("Streetlight").count == 2)
            #expect(try await types("Streetlight;Device").count == 1)
            #expect(try await types("Device,Streetlight").count == 2)
            // One id twice in a batch with different types: only the last type remains.
            _ = try await service.batchUpsert([Self.sensor(3, pm25: 1, district: "a", types: "Streetlight"), Self.sensor(3, pm25: 1, district: "a", types: "Bin")],
                                              mode: .replace, context: core, tenant: .default)
            #expect(try await types("Bin") == ["urn:ngsi-ld:AirQualityObserved:3"])
            #expect(try await types("Streetlight").count == 2)
            try await service.delete("urn:ngsi-ld:AirQualityObserved:3", tenant: .default)
            let stats = try await service.typeStatistics(tenant: .default)
            #expect(stats.map { core.compact($0.type) } == ["Device", "Streetlight"])
            #expect(stats.first { core.compact($0.type) == "Streetlight" }?.entityCount == 2)
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func attributeEditsFollowTheStandard(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            let id = try await service.create(Self.sensor(1, pm25: 10, district: "福田区"), context: core, tenant: .default)
            let pm25 = "https://uri.etsi.org/ngsi-ld/default-context/pm25"
            // append with noOverwrite leaves pm25 alone and adds no2
            let outcome = try await service.append(id, ["pm25": 99, "no2": ["type": "Property", "value": 40, "unitCode": "GQ"]], noOverwrite: true, context: core, tenant: .default)
            #expect(outcome.updated == ["no2"] && outcome.notUpdated.map(\.name) == ["pm25"])
            // update reports attributes that do not exist
            let update = try await service.update(id, ["pm25": 20, "so2": 3], context: core, tenant: .default)
            #expect(update.updated == ["pm25"] && update.notUpdated.map(\.name) == ["so2"])
            // multi-instance by datasetId, then delete one instance
            _ = try await service.append(id, ["pm25": ["type": "Property", "value": 21, "datasetId": "urn:ngsi-ld:Dataset:backup"]], noOverwrite: false, context: core, tenant: .default)
            #expect(try await service.retrieve(id, tenant: .default).attributes[pm25]?.count == 2)
            try await service.deleteAttribute(id, attribute: "pm25", datasetId: "urn:ngsi-ld:Dataset:backup", deleteAll: false, context: core, tenant: .default)
            #expect(try await service.retrieve(id, tenant: .default).attributes[pm25]?.map { $0["value"] } == [.integer(20)])
            // partial update keeps unitCode, changes value
            try await service.partialUpdate(id, attribute: "no2", ["value": 41], context: core, tenant: .default)
            let no2 = try await service.retrieve(id, tenant: .default).attributes["https://uri.etsi.org/ngsi-ld/default-context/no2"]?.first
            #expect(no2?["value"] == .integer(41) && no2?["unitCode"] == "GQ")
            // merge-patch: urn:ngsi-ld:null deletes
            try await service.merge(id, ["no2": "urn:ngsi-ld:null", "pm25": 22], context: core, tenant: .default)
            let merged = try await service.retrieve(id, tenant: .default)
            #expect(merged.attributes["https://uri.etsi.org/ngsi-ld/default-context/no2"] == nil)
            #expect(merged.attributes[pm25]?.first?["value"] == .integer(22))
            await #expect { try await service.deleteAttribute(id, attribute: "nothing", datasetId: nil, deleteAll: false, context: core, tenant: .default) } throws: {
                ($0 as? NGSIError)?.kind == .resourceNotFound
            }
            // The value index follows every edit: queries see the new value, not the old.
            #expect(try await ids(service, q("pm25==22")) == [id])
            #expect(try await ids(service, q("pm25==10,20")).isEmpty)
            #expect(try await ids(service, q("pm25>21")) == [id])
            try await service.delete(id, tenant: .default)
            await #expect { try await service.retrieve(id, tenant: .default) } throws: { ($0 as? NGSIError)?.kind == .resourceNotFound }
            var any = EntityService.QueryParameters()
            any.q = "pm25>0"
            #expect(try await ids(service, any).isEmpty)
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func batchReportsPerEntityErrorsAndTenantsAreIsolated(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            let shenzhen = Tenant("shenzhen")
            let body: JSON = [Self.sensor(1, pm25: 1, district: "a"), ["id": "not a uri", "type": "X"], ["id": "urn:x:2"]]
            let outcome = try await service.batchCreate(body, context: core, tenant: shenzhen)
            #expect(outcome.created == ["urn:ngsi-ld:AirQualityObserved:1"])
            #expect(outcome.errors.count == 2 && outcome.errors.allSatisfy { $0.error.kind == .badRequestData })
            let upsert = try await service.batchUpsert([Self.sensor(1, pm25: 2, district: "a"), Self.sensor(2, pm25: 2, district: "a")], mode: .update, context: core, tenant: shenzhen)
            #expect(upsert.created == ["urn:ngsi-ld:AirQualityObserved:2"] && upsert.succeeded == ["urn:ngsi-ld:AirQualityObserved:1"])
            // The default tenant sees none of it; an unknown tenant does not exist.
            await #expect { try await service.retrieve("urn:ngsi-ld:AirQualityObserved:1", tenant: .default) } throws: { ($0 as? NGSIError)?.kind == .resourceNotFound }
            await #expect { try await service.retrieve("urn:ngsi-ld:AirQualityObserved:1", tenant: Tenant("nowhere")) } throws: { ($0 as? NGSIError)?.kind == .nonexistentTenant }
            let deleted = try await service.batchDelete(["urn:ngsi-ld:AirQualityObserved:1", "urn:ngsi-ld:AirQualityObserved:9"], tenant: shenzhen)
            #expect(deleted.succeeded == ["urn:ngsi-ld:AirQualityObserved:1"] && deleted.errors.map(\.error.kind) == [.resourceNotFound])
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func invalidEntitiesStoreNothing(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            let bad: [JSON] = [
                ["id": "urn:a:1"],
                ["id": "urn:a:1", "type": "T", "p": ["type": "Relationship", "object": "not a uri"]],
                ["id": "urn:a:1", "type": "T", "loc": ["type": "GeoProperty", "value": ["type": "Point", "coordinates": [114, 95]]]],
                ["id": "urn:a:1", "type": "T", "loc": ["type": "GeoProperty", "value": ["type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]]]],
                ["id": "urn:a:1", "type": "T", "p": ["type": "Property"]],
                ["id": "urn:a:1", "type": "T", "p": ["type": "Banana", "value": 1]],
                ["id": "urn:a:1", "type": "T", "p": ["type": "Property", "value": 1, "observedAt": "yesterday"]],
            ]
            for body in bad {
                await #expect { try await service.create(body, context: core, tenant: .default) } throws: { ($0 as? NGSIError)?.kind == .badRequestData }
            }
            var all = EntityService.QueryParameters()
            all.local = true
            let remaining = try await ids(service, all)
            #expect(remaining.isEmpty)
        }
    }
}
