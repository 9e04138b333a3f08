import CityKit

/// The body of `POST /entityOperations/query` and `/temporal/entityOperations/query` (a `Query` object:
/// `entities`, `attrs`, `q`, `geoQ`) as query parameters.
enum QueryBody {
    static func parameters(_ body: [String: JSON], limit: String?, offset: String?) throws(NGSIError) -> EntityService.QueryParameters {
        var parameters = EntityService.QueryParameters()
        if let entities = body["entities"] {
            guard case .array(let selectors) = entities else { throw .badData("entities must be an array of selectors") }
            var ids: [String] = []
            var types: [String] = []
            for selector in selectors {
                guard case .object = selector else { throw .badData("an entity selector must be an object") }
                if let id = selector["id"]?.stringValue { ids.append(id) }
                if let t = selector["type"]?.stringValue { types.append(t) }
                if let pattern = selector["idPattern"]?.stringValue { parameters.idPattern = pattern }
            }
            if !ids.isEmpty { parameters.id = ids.joined(separator: ",") }
            if !types.isEmpty { parameters.type = types.joined(separator: ",") }
        }
        if case .array(let attrs)? = body["attrs"] { parameters.attrs = attrs.compactMap(\.stringValue).joined(separator: ",") }
        parameters.q = body["q"]?.stringValue
        if let geoQ = body["geoQ"] {
            guard case .object(let g) = geoQ else { throw .badData("geoQ must be an object") }
            parameters.georel = g["georel"]?.stringValue
            parameters.geometry = g["geometry"]?.stringValue
            parameters.coordinates = g["coordinates"].map { $0.stringValue ?? JSONCoding.string($0) }
            parameters.geoproperty = g["geoproperty"]?.stringValue
            if parameters.georel == nil || parameters.geometry == nil || parameters.coordinates == nil {
                throw .badData("geoQ needs georel, geometry and coordinates")
            }
        }
        parameters.limit = limit
        parameters.offset = offset
        return parameters
    }
}
