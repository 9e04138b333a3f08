import CityKit
import Foundation
import SQLKit
import Storage
import Testing

@testable import Twin

/// Geo-queries through the store, on SQLite (R*Tree + GEOS) and PostgreSQL (PostGIS), with real shapes:
/// a district with a park cut out of it, points inside, in the park, on the boundary and outside, a road
/// crossing a grid cell.
@Suite struct GeoQueryTests {
    let core = CoreContext.context

    func withService(_ kind: DialectKind, _ body: @Sendable (EntityService) async throws -> Void) async throws {
        try await TestDatabases.with(kind, migrations: TwinMigrations.all) { database, _ in
            try await body(EntityService(store: try await SQLEntityStore.open(database)))
        }
    }

    static let district = "[[[114.00,22.50],[114.02,22.50],[114.02,22.52],[114.00,22.52],[114.00,22.50]],[[114.005,22.505],[114.010,22.505],[114.010,22.510],[114.005,22.510],[114.005,22.505]]]"
    static let cell = "[[[114.01,22.50],[114.02,22.50],[114.02,22.51],[114.01,22.51],[114.01,22.50]]]"

    static func thing(_ name: String, _ geometry: JSON, type: String = "Streetlight") -> JSON {
        ["id": .string("urn:ngsi-ld:\(type):\(name)"), "type": .string(type), "location": ["type": "GeoProperty", "value": geometry]]
    }

    static func point(_ lon: Double, _ lat: Double) -> JSON { ["type": "Point", "coordinates": [.double(lon), .double(lat)]] }

    func load(_ service: EntityService) async throws {
        let things: [JSON] = [
            Self.thing("inside", Self.point(114.015, 22.515)),
            Self.thing("inPark", Self.point(114.0075, 22.5075)),
            Self.thing("onBoundary", Self.point(114.00, 22.51)),
            Self.thing("outside", Self.point(114.03, 22.51)),
            Self.thing("crossingRoad", ["type": "LineString", "coordinates": [[114.005, 22.505], [114.025, 22.505]]], type: "Road"),
            Self.thing("innerRoad", ["type": "LineString", "coordinates": [[114.012, 22.505], [114.018, 22.505]]], type: "Road"),
        ]
        for thing in things { _ = try await service.create(thing, context: core, tenant: .default) }
    }

    func names(_ service: EntityService, georel: String, geometry: String, coordinates: String, geoproperty: String? = nil, type: String? = nil) async throws -> [String] {
        var p = EntityService.QueryParameters()
        p.georel = georel
        p.geometry = geometry
        p.coordinates = coordinates
        p.geoproperty = geoproperty
        p.type = type
        p.limit = "100"
        let (plan, _) = try service.plan(p, context: core)
        return try await service.query(plan, tenant: .default).entities.map { String($0.id.split(separator: ":").last!) }.sorted()
    }

    @Test(arguments: TestDatabases.kinds)
    func relationsOnADistrictWithAHole(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            try await load(service)
            #expect(try await names(service, georel: "within", geometry: "Polygon", coordinates: Self.district) == ["innerRoad", "inside"])
            #expect(try await names(service, georel: "intersects", geometry: "Polygon", coordinates: Self.district) == ["crossingRoad", "innerRoad", "inside", "onBoundary"])
            #expect(try await names(service, georel: "disjoint", geometry: "Polygon", coordinates: Self.district) == ["inPark", "outside"])
            #expect(try await names(service, georel: "within", geometry: "Polygon", coordinates: Self.cell) == ["innerRoad"])
            #expect(try await names(service, georel: "intersects", geometry: "Polygon", coordinates: Self.cell) == ["crossingRoad", "innerRoad"])
            #expect(try await names(service, georel: "contains", geometry: "Point", coordinates: "[114.015,22.505]") == ["crossingRoad", "innerRoad"])
            #expect(try await names(service, georel: "equals", geometry: "Point", coordinates: "[114.03,22.51]") == ["outside"])
            #expect(try await names(service, georel: "overlaps", geometry: "LineString", coordinates: "[[114.02,22.505],[114.03,22.505]]") == ["crossingRoad"])
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func nearInMetres(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            try await load(service)
            // From the inside point (GeographicLib): the park point is 1,133.7 m away, the crossing road
            // 1,107.4 m (its nearest point is due south), the boundary and outside points 1,639.6 m each.
            let here = "[114.015,22.515]"
            #expect(try await names(service, georel: "near;maxDistance==100", geometry: "Point", coordinates: here) == ["inside"])
            #expect(try await names(service, georel: "near;maxDistance==1140", geometry: "Point", coordinates: here, type: "Streetlight") == ["inPark", "inside"])
            #expect(try await names(service, georel: "near;maxDistance==1130", geometry: "Point", coordinates: here, type: "Streetlight") == ["inside"])
            #expect(try await names(service, georel: "near;maxDistance==1110", geometry: "Point", coordinates: here, type: "Road") == ["crossingRoad", "innerRoad"])
            #expect(try await names(service, georel: "near;maxDistance==1100", geometry: "Point", coordinates: here, type: "Road") == [])
            #expect(try await names(service, georel: "near;minDistance==1600", geometry: "Point", coordinates: here) == ["onBoundary", "outside"])
            #expect(try await names(service, georel: "near;minDistance==1140;maxDistance==1600", geometry: "Point", coordinates: here, type: "Streetlight") == [])
        }
    }

    /// A page of a geo-query and its count are the same whether ids alone, ids and types or whole entities
    /// are read, and with a `q` that makes the query look into the entities (on PostgreSQL a geo-query
    /// otherwise starts from the matching shapes).
    @Test(arguments: TestDatabases.kinds)
    func pagesOfAGeoQuery(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            // 25 streetlights in the district's north-east corner, every other one dimmed, a bus stop among them.
            for i in 0..<25 {
                var body = Self.thing(String(format: "p%02d", i), Self.point(114.0125 + Double(i % 5) * 0.001, 22.5125 + Double(i / 5) * 0.001)).objectValue!
                body["dimmed"] = ["type": "Property", "value": .bool(i % 2 == 0)]
                _ = try await service.create(.object(body), context: core, tenant: .default)
            }
            _ = try await service.create(Self.thing("stop", Self.point(114.0135, 22.5135), type: "BusStop"), context: core, tenant: .default)
            _ = try await service.create(Self.thing("away", Self.point(114.05, 22.55)), context: core, tenant: .default)
            var p = EntityService.QueryParameters()
            (p.georel, p.geometry, p.coordinates, p.type) = ("within", "Polygon", Self.district, "Streetlight")
            (p.limit, p.offset, p.count) = ("4", "3", true)
            func page(_ reads: Reads) async throws -> (ids: [String], count: Int?, attributes: Int) {
                var (query, _) = try service.plan(p, context: core)
                query.reads = reads
                let (entities, count) = try await service.query(query, tenant: .default)
                return (entities.map { String($0.id.split(separator: ":").last!) }, count, entities.map(\.attributes.count).reduce(0, +))
            }
            for reads in [Reads.ids, .withoutAttributes, .everything] {
                let (ids, count, attributes) = try await page(reads)
                #expect(ids == ["p03", "p04", "p05", "p06"], "\(reads)")
                #expect(count == 25)
                #expect(attributes == (reads == .everything ? 8 : 0))
            }
            p.q = "dimmed==true"
            let (ids, count, _) = try await page(.ids)
            #expect(ids == ["p06", "p08", "p10", "p12"])
            #expect(count == 13)
            p.q = nil
            (p.type, p.georel, p.geometry, p.coordinates, p.offset) = ("BusStop", "near;maxDistance==50", "Point", "[114.0135,22.5135]", "0")
            #expect(try await page(.ids).ids == ["stop"])
        }
    }

    /// A geo-query's type test follows the entity's types: gained by a merge, lost by a replace that keeps
    /// the location (on PostgreSQL the shapes carry the types), and type expressions with `,` and `;`.
    @Test(arguments: TestDatabases.kinds)
    func theTypeTestFollowsTypeChanges(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            try await load(service)
            let here = "[114.015,22.515]"
            let id = "urn:ngsi-ld:Streetlight:inside"
            #expect(try await names(service, georel: "near;maxDistance==100", geometry: "Point", coordinates: here, type: "Camera") == [])
            try await service.merge(id, ["type": "Camera"], context: core, tenant: .default)
            #expect(try await names(service, georel: "near;maxDistance==100", geometry: "Point", coordinates: here, type: "Camera") == ["inside"])
            #expect(try await names(service, georel: "near;maxDistance==100", geometry: "Point", coordinates: here, type: "Streetlight;Camera") == ["inside"])
            #expect(try await names(service, georel: "within", geometry: "Polygon", coordinates: Self.district, type: "Camera,Road") == ["innerRoad", "inside"])
            #expect(try await names(service, georel: "within", geometry: "Polygon", coordinates: Self.district, type: "(Camera;Road),Streetlight") == ["inside"])
            try await service.replace(id, ["type": "Camera", "location": ["type": "GeoProperty", "value": Self.point(114.015, 22.515)]], context: core, tenant: .default)
            #expect(try await names(service, georel: "near;maxDistance==100", geometry: "Point", coordinates: here, type: "Streetlight") == [])
            #expect(try await names(service, georel: "near;maxDistance==100", geometry: "Point", coordinates: here, type: "Streetlight;Camera") == [])
            #expect(try await names(service, georel: "near;maxDistance==100", geometry: "Point", coordinates: here, type: "Camera") == ["inside"])
        }
    }

    /// PostgreSQL: shapes stored before they carried their entity's types get them from the migration.
    @Test(arguments: TestDatabases.kinds.filter { $0 == .postgres })
    func shapesStoredBeforeTheirTypesGetThem(_ kind: DialectKind) async throws {
        try await TestDatabases.with(kind, migrations: TwinMigrations.all) { database, _ in
            let service = EntityService(store: try await SQLEntityStore.open(database))
            try await load(service)
            try await database.write { db in
                try await db.raw("ALTER TABLE geo_shapes DROP COLUMN types").run()
                try await db.raw("DELETE FROM schema_migrations WHERE id = 'twin-0009-shape-types'").run()
            }
            #expect(try await Migrator(TwinMigrations.all).run(on: database) == ["twin-0009-shape-types"])
            #expect(try await names(service, georel: "within", geometry: "Polygon", coordinates: Self.district, type: "Streetlight") == ["inside"])
            #expect(try await names(service, georel: "within", geometry: "Polygon", coordinates: Self.district, type: "Road") == ["innerRoad"])
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func anyGeoPropertyAndTheIndexFollowsChanges(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            var sensor = Self.thing("mobile", Self.point(114.015, 22.515), type: "Vehicle")
            sensor = .object(sensor.objectValue!.merging(["servedArea": ["type": "GeoProperty", "value": ["type": "Polygon", "coordinates": try JSONCoding.parse(Self.cell)]]]) { a, _ in a })
            let id = try await service.create(sensor, context: core, tenant: .default)
            #expect(try await names(service, georel: "intersects", geometry: "Point", coordinates: "[114.012,22.502]", geoproperty: "servedArea") == ["mobile"])
            #expect(try await names(service, georel: "intersects", geometry: "Point", coordinates: "[114.012,22.502]") == [])
            // Moving it out of the district takes it out of the answers; deleting it removes its shapes.
            try await service.partialUpdate(id, attribute: "location", ["value": Self.point(114.05, 22.55)], context: core, tenant: .default)
            #expect(try await names(service, georel: "within", geometry: "Polygon", coordinates: Self.district) == [])
            #expect(try await names(service, georel: "near;maxDistance==10", geometry: "Point", coordinates: "[114.05,22.55]") == ["mobile"])
            try await service.delete(id, tenant: .default)
            #expect(try await names(service, georel: "near;maxDistance==10", geometry: "Point", coordinates: "[114.05,22.55]") == [])
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func invalidGeometriesAreRefusedAndNothingIsStored(_ kind: DialectKind) async throws {
        try await withService(kind) { service in
            let bad: [JSON] = [
                ["type": "Point", "coordinates": [114.0, 95.0]],
                ["type": "Polygon", "coordinates": [[[114.0, 22.5], [114.1, 22.5], [114.1, 22.6], [114.0, 22.6]]]],  // not closed
                ["type": "Polygon", "coordinates": [[114.0, 22.5], [114.1, 22.5], [114.1, 22.6], [114.0, 22.5]]],  // wrong nesting
                ["type": "Polygon", "coordinates": [[[114.0, 22.5], [114.1, 22.6], [114.1, 22.5], [114.0, 22.6], [114.0, 22.5]]]],  // bow-tie
                ["type": "Point", "coordinates": [114.0, "22.5"]],
            ]
            for (n, geometry) in bad.enumerated() {
                await #expect { _ = try await service.create(Self.thing("bad\(n)", geometry), context: core, tenant: .default) } throws: {
                    ($0 as? NGSIError)?.kind == .badRequestData
                }
            }
            let stored = try await names(service, georel: "disjoint", geometry: "Point", coordinates: "[0,0]")
            #expect(stored == [])
            for (georel, geometry, coordinates) in [
                ("within", "Polygon", "[[[114.0,22.5],[114.1,22.5],[114.1,22.6],[114.0,22.6]]]"),
                ("near;maxDistance==-5", "Point", "[114,22]"),
                ("near", "Point", "[114,22]"),
                ("within", "Circle", "[114,22]"),
                ("within", "Point", "[114,91]"),
                ("within", "Point", "[114,"),
                ("nearby", "Point", "[114,22]"),
            ] {
                #expect(throws: NGSIError.self, "\(georel) \(geometry) \(coordinates)") {
                    var p = EntityService.QueryParameters()
                    (p.georel, p.geometry, p.coordinates) = (georel, geometry, coordinates)
                    _ = try service.plan(p, context: core)
                }
            }
        }
    }
}
