import CityKit
import Foundation
import Geo
import Storage
import Synchronization

/// What `geo_shapes` holds for an entity: one row per GeoProperty instance, by attribute name.
enum GeoIndex {
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
