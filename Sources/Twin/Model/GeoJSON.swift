import CityKit
import Geo

/// GeoJSON geometry values of GeoProperties and geo-queries, read into `Geo.Geometry` and checked.
enum GeoJSON {
    /// Reads and checks a GeoProperty's value: structure, positions in range, rings closed, and validity by
    /// GEOS (e.g. no self-intersecting ring).
    static func geometry(_ value: JSON, name: String, check: Bool = true) throws(NGSIError) -> Geometry {
        try geometry(value, label: "GeoProperty \(name)", check: check)
    }

    /// `label` names the value in error messages ("GeoProperty location", "the query geometry").
    static func geometry(_ value: JSON, label name: String, check: Bool) throws(NGSIError) -> Geometry {
        guard case .object(let o) = value, case .string(let type)? = o["type"] else {
            throw .badData("the value of \(name) must be a GeoJSON geometry")
        }
        let geometry: Geometry
        if type == "GeometryCollection" {
            guard case .array(let members)? = o["geometries"], !members.isEmpty else { throw .badData("\(name): a GeometryCollection needs geometries") }
            var parts: [Geometry] = []
            for member in members { parts.append(try Self.geometry(member, label: name, check: false)) }
            geometry = .collection(parts)
        } else {
            guard let coordinates = o["coordinates"] else { throw .badData("\(name) has no coordinates") }
            geometry = try Self.geometry(type: type, coordinates: coordinates, label: name)
        }
        guard check else { return geometry }
        do throws(GeometryError) {
            try geometry.checkValid()
        } catch {
            throw .badData("\(name): \(error.description)")
        }
        return geometry
    }

    static func geometry(type: String, coordinates: JSON, label name: String) throws(NGSIError) -> Geometry {
        guard let nested = Self.coordinates(coordinates) else { throw .badData("the coordinates of \(name) must be numbers nested in arrays") }
        do throws(GeometryError) {
            return try Geometry(type: type, coordinates: nested)
        } catch {
            throw .badData("\(name): \(error.description)")
        }
    }

    static func coordinates(_ json: JSON) -> Coordinates? {
        switch json {
        case .integer, .double: return json.numberValue.map(Coordinates.number)
        case .array(let items):
            var out: [Coordinates] = []
            for item in items {
                guard let c = coordinates(item) else { return nil }
                out.append(c)
            }
            return .list(out)
        default: return nil
        }
    }

    /// GeoJSON text of a geometry (for PostGIS).
    static func json(_ geometry: Geometry) -> JSON {
        func position(_ p: Position) -> JSON { [.double(p.longitude), .double(p.latitude)] }
        func line(_ ps: [Position]) -> JSON { .array(ps.map(position)) }
        switch geometry {
        case .point(let p): return ["type": "Point", "coordinates": position(p)]
        case .multiPoint(let ps): return ["type": "MultiPoint", "coordinates": line(ps)]
        case .lineString(let ps): return ["type": "LineString", "coordinates": line(ps)]
        case .multiLineString(let ls): return ["type": "MultiLineString", "coordinates": .array(ls.map(line))]
        case .polygon(let rings): return ["type": "Polygon", "coordinates": .array(rings.map(line))]
        case .multiPolygon(let polygons): return ["type": "MultiPolygon", "coordinates": .array(polygons.map { .array($0.map(line)) })]
        case .collection(let parts): return ["type": "GeometryCollection", "geometries": .array(parts.map(json))]
        }
    }
}
