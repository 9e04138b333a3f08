import CityKit

/// Structural checks of GeoJSON geometry values: positions in range, rings closed, nesting right.
enum GeoJSONCheck {
    static func validate(_ value: JSON, name: String) throws(NGSIError) {
        guard case .object(let o) = value, case .string(let type)? = o["type"] else {
            throw .badData("the value of GeoProperty \(name) must be a GeoJSON geometry")
        }
        if type == "GeometryCollection" {
            guard case .array(let geometries)? = o["geometries"] else { throw .badData("GeometryCollection \(name) has no geometries") }
            for g in geometries { try validate(g, name: name) }
            return
        }
        guard let coordinates = o["coordinates"] else { throw .badData("geometry \(name) has no coordinates") }
        try validate(type: type, coordinates: coordinates, name: name)
    }

    static func validate(type: String, coordinates: JSON, name: String) throws(NGSIError) {
        switch type {
        case "Point": try position(coordinates, name)
        case "MultiPoint", "LineString":
            let points = try list(coordinates, name)
            for p in points { try position(p, name) }
            if type == "LineString", points.count < 2 { throw .badData("LineString \(name) needs at least two positions") }
        case "MultiLineString":
            for line in try list(coordinates, name) { try validate(type: "LineString", coordinates: line, name: name) }
        case "Polygon":
            for ring in try list(coordinates, name) {
                let points = try list(ring, name)
                for p in points { try position(p, name) }
                guard points.count >= 4, points.first == points.last else {
                    throw .badData("a ring of polygon \(name) is not closed or has fewer than four positions")
                }
            }
        case "MultiPolygon":
            for polygon in try list(coordinates, name) { try validate(type: "Polygon", coordinates: polygon, name: name) }
        default:
            throw .badData("\(type) is not a GeoJSON geometry type")
        }
    }

    private static func list(_ value: JSON, _ name: String) throws(NGSIError) -> [JSON] {
        guard case .array(let items) = value, !items.isEmpty else { throw .badData("the coordinates of \(name) are not nested as the geometry type needs") }
        return items
    }

    private static func position(_ value: JSON, _ name: String) throws(NGSIError) {
        guard case .array(let items) = value, (2...3).contains(items.count), let lon = items[0].numberValue, let lat = items[1].numberValue,
            items.count == 2 || items[2].numberValue != nil
        else { throw .badData("a position of \(name) must be [longitude, latitude]") }
        guard (-180...180).contains(lon), (-90...90).contains(lat) else {
            throw .badData("a position of \(name) is outside longitude ±180 or latitude ±90")
        }
    }
}
