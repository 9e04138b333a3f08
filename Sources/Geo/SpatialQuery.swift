/// A geo-query: a relation to a query geometry.
public struct SpatialQuery: Sendable, Equatable {
    public let relation: SpatialRelation
    public let geometry: Geometry

    /// Checks the query geometry with GEOS too (a self-intersecting polygon has no sound answer).
    public init(relation: SpatialRelation, geometry: Geometry) throws(GeometryError) {
        guard Geometry.queryTypes.contains(geometry.typeName) else {
            throw GeometryError("a geo-query geometry is one of \(Geometry.queryTypes.sorted().joined(separator: ", "))")
        }
        try geometry.checkValid()
        self.relation = relation
        self.geometry = geometry
    }

    /// A box every matching geometry's box overlaps; nil when none bounds the answers (disjoint, minDistance only).
    public var prefilter: BoundingBox? {
        guard let box = geometry.boundingBox else { return nil }
        switch relation {
        case .near(let maxDistance, _):
            return maxDistance.map { box.expanded(byMetres: $0) }
        case .disjoint:
            return nil
        case .within, .contains, .intersects, .equals, .overlaps:
            return box
        }
    }

    /// Identifies the query for `SpatialMatcher(key:)`: the relation's text and the geometry's WKB in hex.
    public var key: String {
        relation.text + "|" + WKB.hex(WKB.encode(geometry))
    }
}

extension Geometry {
    /// Throws GEOS's reason if the geometry is not valid (e.g. a self-intersecting ring).
    public func checkValid() throws(GeometryError) {
        if case .point = self { return }
        let geos = GEOS()
        guard let g = geos.read(WKB.encode(self)) else { throw GeometryError("the geometry cannot be read") }
        defer { geos.destroy(g) }
        if let reason = geos.invalidity(g) { throw GeometryError("invalid \(typeName): \(reason)") }
    }
}
