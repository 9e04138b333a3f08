import CityKit
import Foundation

/// How one measured value becomes an NGSI-LD attribute: the key in the device's payload (`object_id`), the
/// attribute's name, its declared type and its unit (UN/CEFACT code, e.g. `CEL`).
public struct AttributeMapping: Sendable, Equatable {
    public var objectID: String
    public var name: String
    public var type: String
    public var unitCode: String?

    /// The declared types a value is converted to; any other type keeps the value as it came.
    static let numeric: Set<String> = ["Number", "Float", "Double", "Real"]

    /// Reads `{"object_id", "name", "type", "unitCode" | "metadata": {"unitCode": {"value"}}}`.
    static func parse(_ json: JSON) throws(SensingError) -> AttributeMapping {
        guard case .object(let o) = json, let name = o["name"]?.stringValue, Self.isName(name) else {
            throw SensingError(.wrongSyntax, "each attribute needs a name made of letters, digits and _")
        }
        let objectID = o["object_id"]?.stringValue ?? name
        guard !objectID.isEmpty, objectID.count <= 256 else { throw SensingError(.wrongSyntax, "object_id of \(name) is not valid") }
        let type = o["type"]?.stringValue ?? "Property"
        var unit = o["unitCode"]?.stringValue
        if unit == nil, let meta = o["metadata"]?["unitCode"] { unit = meta["value"]?.stringValue ?? meta.stringValue }
        return AttributeMapping(objectID: objectID, name: name, type: type, unitCode: unit)
    }

    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 256 && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" }
            && !("0"..."9").contains(s.unicodeScalars.first!)
    }

    var json: JSON {
        var o: [String: JSON] = ["object_id": .string(objectID), "name": .string(name), "type": .string(type)]
        if let unitCode { o["unitCode"] = .string(unitCode) }
        return .object(o)
    }

    /// The NGSI-LD attribute for a measured `raw` value, observed at `observedAt`; throws when the value does
    /// not fit the declared type.
    func attribute(_ raw: JSON, observedAt: String) throws(SensingError) -> JSON {
        var attribute: [String: JSON] = ["type": "Property", "observedAt": .string(observedAt)]
        if let unitCode { attribute["unitCode"] = .string(unitCode) }
        func wrong() -> SensingError { SensingError(.badRequest, "\(objectID) = \(JSONCoding.string(raw)) is not a \(type)") }
        switch type {
        case _ where Self.numeric.contains(type):
            guard let n = raw.numberValue ?? raw.stringValue.flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }), n.isFinite else { throw wrong() }
            attribute["value"] = .double(n)
        case "Integer":
            if case .integer(let i) = raw {
                attribute["value"] = .integer(i)
            } else if let n = raw.numberValue ?? raw.stringValue.flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }), n.isFinite, n == n.rounded(), abs(n) < 9e15 {
                attribute["value"] = .integer(Int64(n))
            } else {
                throw wrong()
            }
        case "Boolean":
            switch raw {
            case .bool(let b): attribute["value"] = .bool(b)
            case .string("true"), .integer(1): attribute["value"] = true
            case .string("false"), .integer(0): attribute["value"] = false
            default: throw wrong()
            }
        case "Text", "String":
            switch raw {
            case .string, .integer, .double, .bool: attribute["value"] = .string(raw.stringValue ?? JSONCoding.string(raw))
            default: throw wrong()
            }
        case "DateTime":
            guard let text = raw.stringValue, Timestamp.parse(text) != nil else { throw wrong() }
            attribute["value"] = ["@type": "DateTime", "@value": .string(text)]
        case "geo:point":
            // "latitude, longitude", as the IoT Agents write it.
            let parts = raw.stringValue?.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) } ?? []
            guard parts.count == 2, let lat = parts[0], let lon = parts[1] else { throw wrong() }
            attribute["type"] = "GeoProperty"
            attribute["value"] = ["type": "Point", "coordinates": [.double(lon), .double(lat)]]
        case "geo:json", "GeoProperty":
            guard case .object = raw else { throw wrong() }
            attribute["type"] = "GeoProperty"
            attribute["value"] = raw
        case "Relationship":
            guard let text = raw.stringValue, text.contains(":") else { throw wrong() }
            attribute["type"] = "Relationship"
            attribute["object"] = .string(text)
        default:
            guard raw != .null else { throw wrong() }
            attribute["value"] = raw
        }
        return .object(attribute)
    }
}

/// An attribute every entity of a device (or group) carries as provisioned: `{"name", "type", "value"}`.
public struct StaticAttribute: Sendable, Equatable {
    public var name: String
    public var type: String
    public var value: JSON

    static func parse(_ json: JSON) throws(SensingError) -> StaticAttribute {
        guard case .object(let o) = json, let name = o["name"]?.stringValue, AttributeMapping.isName(name), let value = o["value"] else {
            throw SensingError(.wrongSyntax, "each static attribute needs a name and a value")
        }
        return StaticAttribute(name: name, type: o["type"]?.stringValue ?? "Property", value: value)
    }

    var json: JSON { ["name": .string(name), "type": .string(type), "value": value] }

    /// The NGSI-LD attribute.
    var attribute: JSON {
        switch type {
        case "Relationship": return ["type": "Relationship", "object": value]
        case "geo:json", "GeoProperty": return ["type": "GeoProperty", "value": value]
        default: return ["type": "Property", "value": value]
        }
    }
}
