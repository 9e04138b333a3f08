import CityKit
import HTTPTypes
import Hummingbird
import NIOCore

/// Builds NGSI-LD responses: the body in the accepted representation and the @context where it belongs.
struct NGSIResponse {
    let type: NGSIRequest.ResponseType
    let context: LDContext
    /// The context URL or value the caller used (nil: the core context).
    var contextValue: JSON? { context.source }

    var contextForBody: JSON { contextValue ?? .string(CoreContext.url) }

    var linkHeader: String {
        let url = context.implicitURL ?? contextValue?.stringValue ?? CoreContext.url
        return "<\(url)>; rel=\"\(NGSIRequest.linkRelation)\"; type=\"application/ld+json\""
    }

    /// One entity or a list of them.
    func entities(_ items: [JSON], single: Bool, status: HTTPResponse.Status = .ok, extra: HTTPFields = [:], geoproperty: String = "location") -> Response {
        var headers = extra
        let body: JSON
        switch type {
        case .json:
            headers[.contentType] = "application/json"
            headers[NGSIRequest.linkHeader] = linkHeader
            body = single ? items[0] : .array(items)
        case .ldJSON:
            headers[.contentType] = "application/ld+json"
            let withContext = items.map { item -> JSON in
                guard case .object(var o) = item else { return item }
                o["@context"] = contextForBody
                return .object(o)
            }
            body = single ? withContext[0] : .array(withContext)
        case .geoJSON:
            headers[.contentType] = "application/geo+json"
            headers[NGSIRequest.linkHeader] = linkHeader
            let features = items.map { feature($0, geoproperty: geoproperty) }
            body = single ? features[0] : ["type": "FeatureCollection", "features": .array(features)]
        }
        return Self.json(body, status: status, headers: headers)
    }

    /// A GeoJSON Feature: the geoproperty's value as geometry, every other member in properties.
    func feature(_ entity: JSON, geoproperty: String) -> JSON {
        guard case .object(var properties) = entity else { return entity }
        let id = properties.removeValue(forKey: "id") ?? .null
        var geometry: JSON = .null
        if let geo = properties[geoproperty] {
            if let value = geo["value"], value["coordinates"] != nil || value["geometries"] != nil {
                geometry = value
            } else if geo["coordinates"] != nil {
                geometry = geo
            }
        }
        return ["id": id, "type": "Feature", "geometry": geometry, "properties": .object(properties)]
    }

    /// Any other JSON body with the context in a Link header.
    func plain(_ body: JSON, status: HTTPResponse.Status = .ok) -> Response {
        var headers: HTTPFields = [:]
        if type == .ldJSON, case .object(var o) = body {
            o["@context"] = contextForBody
            headers[.contentType] = "application/ld+json"
            return Self.json(.object(o), status: status, headers: headers)
        }
        headers[.contentType] = "application/json"
        headers[NGSIRequest.linkHeader] = linkHeader
        return Self.json(body, status: status, headers: headers)
    }

    static func json(_ body: JSON, status: HTTPResponse.Status = .ok, headers: HTTPFields = [.contentType: "application/json"]) -> Response {
        Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: JSONCoding.data(body))))
    }

    static func noContent() -> Response { Response(status: .noContent) }
}
