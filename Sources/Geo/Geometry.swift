/// A WGS 84 position: longitude then latitude, in degrees (GeoJSON order).
public struct Position: Sendable, Hashable {
    public var longitude: Double
    public var latitude: Double

    public init(_ longitude: Double, _ latitude: Double) {
        self.longitude = longitude
        self.latitude = latitude
    }
}

/// GeoJSON coordinates as they arrive: numbers nested in lists.
public indirect enum Coordinates: Sendable, Equatable {
    case number(Double)
    case list([Coordinates])
}

/// A GeoJSON geometry (RFC 7946), two-dimensional; an altitude, if given, is checked and dropped.
public indirect enum Geometry: Sendable, Equatable {
    case point(Position)
    case multiPoint([Position])
    case lineString([Position])
    case multiLineString([[Position]])
    case polygon([[Position]])
    case multiPolygon([[[Position]]])
    case collection([Geometry])

    /// The geometry types a geo-query may name in `geometry`.
    public static let queryTypes: Set<String> = ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"]

    /// Builds and checks a geometry: positions in range, nesting as the type needs, rings closed with at
    /// least four positions, lines with at least two.
    public init(type: String, coordinates: Coordinates) throws(GeometryError) {
        switch type {
        case "Point": self = .point(try Self.position(coordinates))
        case "MultiPoint": self = .multiPoint(try Self.list(coordinates, type).mapChecked(Self.position))
        case "LineString": self = .lineString(try Self.line(coordinates))
        case "MultiLineString": self = .multiLineString(try Self.list(coordinates, type).mapChecked(Self.line))
        case "Polygon": self = .polygon(try Self.rings(coordinates))
        case "MultiPolygon": self = .multiPolygon(try Self.list(coordinates, type).mapChecked(Self.rings))
        default: throw GeometryError("\(type) is not a GeoJSON geometry type")
        }
    }

    public var typeName: String {
        switch self {
        case .point: "Point"
        case .multiPoint: "MultiPoint"
        case .lineString: "LineString"
        case .multiLineString: "MultiLineString"
        case .polygon: "Polygon"
        case .multiPolygon: "MultiPolygon"
        case .collection: "GeometryCollection"
        }
    }

    /// Every position of the geometry.
    public var positions: [Position] {
        switch self {
        case .point(let p): [p]
        case .multiPoint(let ps), .lineString(let ps): ps
        case .multiLineString(let lines), .polygon(let lines): lines.flatMap { $0 }
        case .multiPolygon(let polygons): polygons.flatMap { $0.flatMap { $0 } }
        case .collection(let geometries): geometries.flatMap(\.positions)
        }
    }

    public var boundingBox: BoundingBox? { BoundingBox(covering: positions) }

    static func position(_ c: Coordinates) throws(GeometryError) -> Position {
        guard case .list(let items) = c, (2...3).contains(items.count) else {
            throw GeometryError("a position must be [longitude, latitude] or [longitude, latitude, altitude]")
        }
        var numbers: [Double] = []
        for item in items {
            guard case .number(let n) = item, n.isFinite else { throw GeometryError("a position must hold finite numbers") }
            numbers.append(n)
        }
        guard (-180...180).contains(numbers[0]), (-90...90).contains(numbers[1]) else {
            throw GeometryError("position [\(numbers[0]), \(numbers[1])] is outside longitude ±180 or latitude ±90")
        }
        return Position(numbers[0], numbers[1])
    }

    static func list(_ c: Coordinates, _ type: String) throws(GeometryError) -> [Coordinates] {
        guard case .list(let items) = c, !items.isEmpty else { throw GeometryError("the coordinates are not nested as \(type) needs") }
        return items
    }

    static func line(_ c: Coordinates) throws(GeometryError) -> [Position] {
        let points = try list(c, "LineString").mapChecked(position)
        guard points.count >= 2 else { throw GeometryError("a LineString needs at least two positions") }
        return points
    }

    static func rings(_ c: Coordinates) throws(GeometryError) -> [[Position]] {
        try list(c, "Polygon").mapChecked { (ring) throws(GeometryError) -> [Position] in
            let points = try list(ring, "Polygon").mapChecked(position)
            guard points.count >= 4, points.first == points.last else {
                throw GeometryError("a polygon ring must be closed (first position = last) and have at least four positions")
            }
            return points
        }
    }
}

extension Array {
    /// `map` with a typed throw.
    func mapChecked<T>(_ transform: (Element) throws(GeometryError) -> T) throws(GeometryError) -> [T] {
        var out: [T] = []
        out.reserveCapacity(count)
        for element in self { out.append(try transform(element)) }
        return out
    }
}
