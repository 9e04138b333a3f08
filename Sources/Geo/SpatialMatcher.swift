import CGEOS
import Synchronization

/// Evaluates one geo-query against stored geometries (WKB), exactly: GEOS's prepared predicates for the
/// topological relations, geodesic distances (PROJ) for `near`. Safe to share: evaluations take turns.
public final class SpatialMatcher: Sendable {
    private let relation: SpatialRelation
    private let queryPoint: Position?
    /// Used only while holding `lock`: a GEOS context serves one thread at a time.
    private let prepared: PreparedQuery
    private let lock = Mutex(())

    /// From `SpatialQuery.key`.
    public init(key: String) throws(GeometryError) {
        guard let bar = key.firstIndex(of: "|") else { throw GeometryError("malformed geo-query key") }
        relation = try SpatialRelation(georel: String(key[..<bar]))
        let hex = Array(key[key.index(after: bar)...].utf8)
        guard hex.count % 2 == 0 else { throw GeometryError("malformed geo-query key") }
        var wkb: [UInt8] = []
        wkb.reserveCapacity(hex.count / 2)
        for i in stride(from: 0, to: hex.count, by: 2) {
            guard let byte = UInt8(String(decoding: hex[i..<i + 2], as: UTF8.self), radix: 16) else { throw GeometryError("malformed geo-query key") }
            wkb.append(byte)
        }
        queryPoint = wkb.withUnsafeBytes { WKB.point($0) }
        guard let prepared = PreparedQuery(wkb: wkb) else { throw GeometryError("the query geometry cannot be read") }
        self.prepared = prepared
    }

    public func matches(_ wkb: UnsafeRawBufferPointer) -> Bool {
        if case .near(let maxDistance, let minDistance) = relation {
            guard let d = distance(wkb) else { return false }
            return (maxDistance.map { d <= $0 } ?? true) && (minDistance.map { d >= $0 } ?? true)
        }
        return lock.withLock { _ in prepared.relates(wkb, relation) }
    }

    /// Metres on the earth between the stored geometry and the query geometry: exact for two points; for
    /// other shapes, between the closest pair of points found in longitude/latitude.
    func distance(_ wkb: UnsafeRawBufferPointer) -> Double? {
        if let queryPoint, let point = WKB.point(wkb) { return Geodesic.distance(queryPoint, point) }
        return lock.withLock { _ in prepared.nearest(wkb) }.map { Geodesic.distance($0.0, $0.1) }
    }
}

/// The query geometry in one GEOS context, prepared for repeated predicates. Not safe for concurrent use:
/// `SpatialMatcher` serializes every call under its lock.
final class PreparedQuery: @unchecked Sendable {
    let geos = GEOS()
    let geometry: OpaquePointer
    let prepared: OpaquePointer

    init?(wkb: [UInt8]) {
        guard let g = geos.read(wkb) else { return nil }
        guard let p = GEOSPrepare_r(geos.handle, g) else {
            geos.destroy(g)
            return nil
        }
        geometry = g
        prepared = p
    }

    deinit {
        GEOSPreparedGeom_destroy_r(geos.handle, prepared)
        geos.destroy(geometry)
    }

    func relates(_ wkb: UnsafeRawBufferPointer, _ relation: SpatialRelation) -> Bool {
        guard let g = geos.read(wkb) else { return false }
        defer { geos.destroy(g) }
        let h = geos.handle
        let answer: CChar
        switch relation {
        case .within: answer = GEOSPreparedContains_r(h, prepared, g)  // query contains entity
        case .contains: answer = GEOSPreparedWithin_r(h, prepared, g)  // query within entity
        case .intersects: answer = GEOSPreparedIntersects_r(h, prepared, g)
        case .disjoint: answer = GEOSPreparedDisjoint_r(h, prepared, g)
        case .overlaps: answer = GEOSPreparedOverlaps_r(h, prepared, g)
        case .equals: answer = GEOSEquals_r(h, g, geometry)
        case .near: answer = 0
        }
        return answer == 1
    }

    func nearest(_ wkb: UnsafeRawBufferPointer) -> (Position, Position)? {
        guard let g = geos.read(wkb) else { return nil }
        defer { geos.destroy(g) }
        return geos.nearestPoints(g, geometry)
    }
}
