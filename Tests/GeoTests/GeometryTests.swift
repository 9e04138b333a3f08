import Testing

@testable import Geo

/// Geometry checks, geodesic distances and exact predicates on real shapes of a Shenzhen district.
@Suite struct GeometryTests {
    static func ring(_ points: [(Double, Double)]) -> Coordinates {
        .list(points.map { .list([.number($0.0), .number($0.1)]) })
    }

    static func position(_ x: Double, _ y: Double) -> Coordinates { .list([.number(x), .number(y)]) }

    /// A district (about 2 km square) with a park cut out of it.
    static let district = try! Geometry(type: "Polygon", coordinates: .list([
        ring([(114.00, 22.50), (114.02, 22.50), (114.02, 22.52), (114.00, 22.52), (114.00, 22.50)]),
        ring([(114.005, 22.505), (114.010, 22.505), (114.010, 22.510), (114.005, 22.510), (114.005, 22.505)]),
    ]))

    func matcher(_ georel: String, _ geometry: Geometry) throws -> SpatialMatcher {
        try SpatialMatcher(key: SpatialQuery(relation: SpatialRelation(georel: georel), geometry: geometry).key)
    }

    func matches(_ matcher: SpatialMatcher, _ geometry: Geometry) -> Bool {
        WKB.encode(geometry).withUnsafeBytes { matcher.matches($0) }
    }

    @Test func malformedGeometriesAreRefused() {
        let bad: [(String, Coordinates)] = [
            ("Point", Self.position(114, 91)),  // latitude beyond ±90
            ("Point", Self.position(181, 22)),
            ("Point", .list([.number(114)])),
            ("Point", .list([.number(114), .number(.nan)])),
            ("LineString", .list([Self.position(114, 22)])),  // one position
            ("Polygon", .list([Self.ring([(114, 22), (114.1, 22), (114.1, 22.1), (114, 22.1)])])),  // ring not closed
            ("Polygon", Self.ring([(114, 22), (114.1, 22), (114.1, 22.1), (114, 22)])),  // nesting one level short
            ("MultiPolygon", .list([])),
            ("Circle", Self.position(114, 22)),
        ]
        for (type, coordinates) in bad {
            #expect(throws: GeometryError.self, "\(type) \(coordinates)") { try Geometry(type: type, coordinates: coordinates) }
        }
    }

    @Test func selfIntersectingPolygonIsInvalid() throws {
        let bowtie = try Geometry(type: "Polygon", coordinates: .list([Self.ring([(114, 22), (114.1, 22.1), (114.1, 22), (114, 22.1), (114, 22)])]))
        #expect(throws: GeometryError.self) { try bowtie.checkValid() }
        #expect(throws: GeometryError.self) { try SpatialQuery(relation: .within, geometry: bowtie) }
        try Self.district.checkValid()
    }

    @Test func geodesicDistancesAreOnTheEllipsoid() {
        // JFK to Singapore Changi, the example of PROJ's geodesic.h: 15,347,512.94 m on WGS 84, as the
        // Python GeographicLib (an independent implementation) also computes it.
        let d = Geodesic.distance(Position(-73.78, 40.64), Position(103.99, 1.36))
        #expect(abs(d - 15_347_512.94) < 0.01)
        // One thousandth of a degree of latitude near Shenzhen is about 110.7 m.
        let step = Geodesic.distance(Position(114, 22.5), Position(114, 22.501))
        #expect(abs(step - 110.7) < 0.5)
    }

    @Test func nearUsesMetresOnTheEarth() throws {
        let centre = Geometry.point(Position(114.0, 22.5))
        let near = try matcher("near;maxDistance==500", centre)
        #expect(matches(near, .point(Position(114.004, 22.5))))  // ≈ 411 m east
        #expect(!matches(near, .point(Position(114.0, 22.5046))))  // ≈ 509 m north
        let far = try matcher("near;minDistance==500", centre)
        #expect(matches(far, .point(Position(114.0, 22.5046))))
        // A road passing 300 m north of the centre is near it, though its ends are far.
        let road = Geometry.lineString([Position(113.99, 22.5027), Position(114.01, 22.5027)])
        #expect(matches(near, road))
        #expect(!matches(try matcher("near;maxDistance==200", centre), road))
    }

    @Test func withinRespectsHolesAndBoundaries() throws {
        let within = try matcher("within", Self.district)
        #expect(matches(within, .point(Position(114.015, 22.515))))
        #expect(!matches(within, .point(Position(114.0075, 22.5075))), "a point in the park (the hole) is not in the district")
        #expect(!matches(within, .point(Position(114.00, 22.51))), "a point on the boundary is not within")
        #expect(matches(try matcher("intersects", Self.district), .point(Position(114.00, 22.51))), "but it intersects")
        #expect(!matches(within, .point(Position(114.03, 22.51))))
    }

    @Test func roadCrossingACell() throws {
        let cell = try Geometry(type: "Polygon", coordinates: .list([Self.ring([(114.01, 22.50), (114.02, 22.50), (114.02, 22.51), (114.01, 22.51), (114.01, 22.50)])]))
        let crossing = Geometry.lineString([Position(114.005, 22.505), Position(114.025, 22.505)])
        let inside = Geometry.lineString([Position(114.012, 22.505), Position(114.018, 22.505)])
        let outside = Geometry.lineString([Position(114.03, 22.50), Position(114.04, 22.51)])
        #expect(matches(try matcher("intersects", cell), crossing))
        #expect(!matches(try matcher("within", cell), crossing))
        #expect(matches(try matcher("within", cell), inside))
        #expect(matches(try matcher("disjoint", cell), outside))
        #expect(!matches(try matcher("disjoint", cell), crossing))
        #expect(matches(try matcher("overlaps", cell), cell) == false, "a shape does not overlap itself")
        #expect(matches(try matcher("equals", cell), cell))
        // The cell contains the inner road: the entity (cell) contains the query geometry (road).
        #expect(matches(try matcher("contains", inside), cell))
        #expect(!matches(try matcher("contains", crossing), cell))
    }

    @Test func prefilterBoxesBoundTheAnswers() throws {
        let centre = Geometry.point(Position(114.0, 22.5))
        let box = try #require(try SpatialQuery(relation: .near(maxDistance: 500, minDistance: nil), geometry: centre).prefilter)
        // 500 m is about 0.0045° of latitude and 0.0049° of longitude here; the box must hold both.
        #expect(box.maxLatitude - 22.5 >= 0.0045 && box.maxLatitude - 22.5 < 0.0047)
        #expect(box.maxLongitude - 114.0 >= 0.00486 && box.maxLongitude - 114.0 < 0.0051)
        #expect(try SpatialQuery(relation: .disjoint, geometry: centre).prefilter == nil)
    }

    @Test func georelTextRoundTrips() throws {
        for text in ["near;maxDistance==500.0", "within", "contains", "intersects", "disjoint", "equals", "overlaps"] {
            #expect(try SpatialRelation(georel: text).text == text)
        }
        for bad in ["near", "near;maxDistance==-1", "near;radius==5", "inside", "within;maxDistance==5", "near;maxDistance==abc"] {
            #expect(throws: GeometryError.self, "\(bad)") { try SpatialRelation(georel: bad) }
        }
    }
}
