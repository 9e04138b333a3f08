import CityKit
import Foundation
import Geo
import Storage
import Synchronization

/// What `geo_shapes` holds for an entity: one row per GeoProperty instance, by attribute name.
enum GeoIndex {
    /// PostgreSQL: what each pooled connection runs once before its first use. A new backend's first
    /// geography distance waits 20–30 ms while PostGIS loads and reads the spheroid of SRID 4326, and its
    /// first query of `geo_shapes` a few ms more for the table's catalog entries (measured in psql on
    /// 1,000,000 points: a `near` 500 m on a new connection 23–186 ms, after these 2.3–2.5 ms, warm 1.7–2.0 ms).
    static let postgresPreparation = [
        "SELECT ST_DWithin('SRID=4326;POINT(114 22.5)'::geography, 'SRID=4326;POINT(114.001 22.5)'::geography, 500)",
        "SELECT 1 FROM geo_shapes g WHERE ST_DWithin(g.geom::geography, 'SRID=4326;POINT(0 0)'::geography, 1) AND g.types @> ARRAY['']::text[] LIMIT 1",
    ]

    struct Row: Sendable, Hashable {
        let name: String
        let wkb: [UInt8]
        let geometry: Geometry

        static func == (a: Row, b: Row) -> Bool { a.name == b.name && a.wkb == b.wkb }
        func hash(into hasher: inout Hasher) {
            hasher.combine(name)
            hasher.combine(wkb)
        }
    }

    static func rows(of entity: Entity?) -> Set<Row> {
        guard let entity else { return [] }
        var rows = Set<Row>()
        for (name, instances) in entity.attributes {
            for instance in instances where instance["type"] == "GeoProperty" {
                // Stored values were checked on the way in.
                guard let value = instance["value"], let geometry = try? GeoJSON.geometry(value, name: name, check: false) else { continue }
                rows.insert(Row(name: name, wkb: WKB.encode(geometry), geometry: geometry))
            }
        }
        return rows
    }

    /// `geo_match(wkb, key)`: the exact test of a geo-query (by `SpatialQuery.key`) on a stored geometry,
    /// for SQLite, which has an R*Tree of boxes but no geometry functions.
    static let sqliteMatch = SQLitePredicate(name: "geo_match") { key in
        guard let matcher = Matchers.shared.matcher(key) else { return nil }
        return { matcher.matches($0) }
    }

    /// `geo_match_geojson(geojson, key)`: the same test on a GeoJSON geometry given as UTF-8 bytes (a
    /// GeoProperty instance kept in history, which has no row in `geo_shapes`).
    static let sqliteMatchGeoJSON = SQLitePredicate(name: "geo_match_geojson") { key in
        guard let matcher = Matchers.shared.matcher(key) else { return nil }
        return { bytes in
            guard let value = try? JSONCoding.parse(Data(bytes)), let geometry = try? GeoJSON.geometry(value, name: "", check: false) else { return false }
            return WKB.encode(geometry).withUnsafeBytes { matcher.matches($0) }
        }
    }

    /// Prepared geo-queries, kept because a query tests many rows against one geometry.
    final class Matchers: Sendable {
        static let shared = Matchers()
        private let cache = Mutex<[String: SpatialMatcher]>([:])

        func matcher(_ key: String) -> SpatialMatcher? {
            if let m = cache.withLock({ $0[key] }) { return m }
            guard let m = try? SpatialMatcher(key: key) else { return nil }
            cache.withLock { cache in
                if cache.count >= 64 { cache.removeAll() }
                cache[key] = m
            }
            return m
        }
    }
}
