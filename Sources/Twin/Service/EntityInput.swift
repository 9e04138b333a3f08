import CityKit
import Foundation

/// Validates entity and attribute bodies and brings them to the expanded, normalized stored form.
///
/// Accepts the normalized and the concise representations; rejects with `BadRequestData` what is well-formed
/// JSON but not a valid NGSI-LD entity or attribute.
public struct EntityInput: Sendable {
    public let context: LDContext
    public let now: Date

    public init(context: LDContext, now: Date) {
        self.context = context
        self.now = now
    }

    static let maximumSubAttributeDepth = 8

    /// Parses a whole entity; `requireType` is false for merge bodies.
    public func entity(_ json: JSON, idFromPath: String? = nil, requireType: Bool = true) throws(NGSIError) -> Entity {
        guard case .object(let object) = json else { throw .badData("an entity must be a JSON object, not a \(json.typeName)") }
        let id: String
        if let given = object["id"] ?? object["@id"] {
            guard case .string(let s) = given else { throw .badData("the entity id must be a string") }
            guard EntityInput.isURI(s) else { throw .badData("the entity id \(s) is not a URI") }
            if let idFromPath, idFromPath != s { throw .badData("the entity id in the body differs from the one in the path") }
            id = s
        } else if let idFromPath {
            id = idFromPath
        } else {
            throw .badData("the entity has no id")
        }
        var types: [String] = []
        if let given = object["type"] ?? object["@type"] {
            types = try typeNames(given)
        } else if requireType {
            throw .badData("the entity has no type")
        }
        var attributes: [String: [[String: JSON]]] = [:]
        for (name, value) in object where !Self.entityMembers.contains(name) {
            let expanded = try attributeName(name)
            attributes[expanded] = try instances(of: name, value)
        }
        return Entity(id: id, types: types, attributes: attributes)
    }

    static let entityMembers: Set<String> = ["id", "@id", "type", "@type", "@context", "createdAt", "modifiedAt", "scope", "deletedAt"]

    func typeNames(_ value: JSON) throws(NGSIError) -> [String] {
        var names: [String] = []
        switch value {
        case .string(let s): names = [s]
        case .array(let items):
            for item in items {
                guard case .string(let s) = item else { throw .badData("entity types must be strings") }
                names.append(s)
            }
        default: throw .badData("the entity type must be a string or an array of strings")
        }
        guard !names.isEmpty else { throw .badData("the entity has an empty list of types") }
        var out: [String] = []
        for name in names {
            guard EntityInput.isValidName(name) else { throw .badData("\(name) is not a valid entity type name") }
            let iri = context.expand(name)
            if !out.contains(iri) { out.append(iri) }
        }
        return out
    }

    /// Expands and checks an attribute name.
    public func attributeName(_ name: String) throws(NGSIError) -> String {
        guard EntityInput.isValidName(name) else { throw .badData("\(name) is not a valid attribute name") }
        return context.expand(name)
    }

    /// One attribute's value in a request: a single instance, or an array of instances told apart by datasetId.
    public func instances(of name: String, _ value: JSON) throws(NGSIError) -> [[String: JSON]] {
        if case .array(let items) = value, !items.isEmpty, items.allSatisfy(Self.looksLikeAttributeObject) {
            var out: [[String: JSON]] = []
            var seen = Set<String>()
            for item in items {
                let instance = try attribute(name, item, depth: 0)
                let key = instance["datasetId"]?.stringValue ?? ""
                guard seen.insert(key).inserted else {
                    throw .badData("attribute \(name) has two instances with the same datasetId")
                }
                out.append(instance)
            }
            return out
        }
        return [try attribute(name, value, depth: 0)]
    }

    static func looksLikeAttributeObject(_ value: JSON) -> Bool {
        guard case .object(let o) = value else { return false }
        if case .string(let t)? = o["type"], AttributeType(rawValue: t) != nil { return true }
        return o["datasetId"] != nil && (o["value"] != nil || o["object"] != nil || o["languageMap"] != nil || o["json"] != nil || o["vocab"] != nil || o["valueList"] != nil || o["objectList"] != nil)
    }

    static let geometryTypes: Set<String> = ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"]

    /// Infers the attribute type of a concise value.
    func inferType(_ object: [String: JSON]) -> AttributeType? {
        if case .string(let t)? = object["type"] {
            if let type = AttributeType(rawValue: t) { return type }
            return nil
        }
        if object["object"] != nil { return .relationship }
        if object["languageMap"] != nil { return .languageProperty }
        if object["valueList"] != nil { return .listProperty }
        if object["objectList"] != nil { return .listRelationship }
        if object["json"] != nil { return .jsonProperty }
        if object["vocab"] != nil { return .vocabProperty }
        if object["value"] != nil { return .property }
        return nil
    }

    /// Parses one attribute instance (normalized or concise) into the stored form.
    public func attribute(_ name: String, _ value: JSON, depth: Int) throws(NGSIError) -> [String: JSON] {
        guard depth <= Self.maximumSubAttributeDepth else { throw .badData("attribute \(name) nests sub-attributes too deeply") }
        var object: [String: JSON]
        var type: AttributeType
        switch value {
        case .object(let o):
            if let inferred = inferType(o) {
                type = inferred
                object = o
            } else if case .string(let t)? = o["type"], Self.geometryTypes.contains(t) {
                type = .geoProperty
                object = ["value": value]
            } else if case .string(let t)? = o["type"] {
                throw .badData("attribute \(name) has the unknown type \(t)")
            } else {
                // A compound value in concise form.
                type = .property
                object = ["value": value]
            }
        case .null:
            throw .badData("attribute \(name) is null")
        default:
            type = .property
            object = ["value": value]
        }
        object["type"] = .string(type.rawValue)
        var out: [String: JSON] = ["type": .string(type.rawValue)]
        try validateValue(name, type, object, into: &out)
        for (member, memberValue) in object {
            switch member {
            case "type", type.valueMember, "createdAt", "modifiedAt", "instanceId", "@context", "lang":
                continue
            case "observedAt":
                guard case .string(let s) = memberValue, Timestamp.parse(s) != nil else {
                    throw .badData("observedAt of \(name) is not an ISO 8601 date-time")
                }
                out["observedAt"] = memberValue
            case "unitCode":
                guard case .string = memberValue else { throw .badData("unitCode of \(name) must be a string") }
                out["unitCode"] = memberValue
            case "datasetId":
                guard case .string(let s) = memberValue, EntityInput.isURI(s) else { throw .badData("datasetId of \(name) must be a URI") }
                out["datasetId"] = memberValue
            case "objectType":
                out["objectType"] = memberValue
            case "value", "object", "languageMap", "valueList", "objectList", "json", "vocab":
                throw .badData("attribute \(name) of type \(type.rawValue) cannot have a member \(member)")
            default:
                let sub = try attributeName(member)
                out[sub] = .object(try attribute(member, memberValue, depth: depth + 1))
            }
        }
        return out
    }

    private func validateValue(_ name: String, _ type: AttributeType, _ object: [String: JSON], into out: inout [String: JSON]) throws(NGSIError) {
        guard let value = object[type.valueMember] else {
            throw .badData("attribute \(name) of type \(type.rawValue) has no \(type.valueMember)")
        }
        switch type {
        case .property:
            if case .null = value { throw .badData("attribute \(name) has a null value") }
            out["value"] = value
        case .relationship:
            switch value {
            case .string(let s) where EntityInput.isURI(s): out["object"] = value
            case .array(let items) where !items.isEmpty && items.allSatisfy({ $0.stringValue.map(EntityInput.isURI) ?? false }): out["object"] = value
            default: throw .badData("the object of relationship \(name) must be a URI")
            }
        case .geoProperty:
            _ = try GeoJSON.geometry(value, name: name)
            out["value"] = value
        case .languageProperty:
            guard case .object(let map) = value else { throw .badData("the languageMap of \(name) must be an object") }
            for (_, text) in map {
                switch text {
                case .string: continue
                case .array(let items) where items.allSatisfy({ $0.stringValue != nil }): continue
                default: throw .badData("the languageMap of \(name) must map languages to strings")
                }
            }
            out["languageMap"] = value
        case .listProperty:
            guard case .array = value else { throw .badData("the valueList of \(name) must be an array") }
            out["valueList"] = value
        case .listRelationship:
            guard case .array(let items) = value else { throw .badData("the objectList of \(name) must be an array") }
            var list: [JSON] = []
            for item in items {
                switch item {
                case .string(let s) where EntityInput.isURI(s): list.append(["object": item])
                case .object(let o) where o["object"]?.stringValue.map(EntityInput.isURI) ?? false: list.append(item)
                default: throw .badData("the objectList of \(name) must hold URIs")
                }
            }
            out["objectList"] = .array(list)
        case .jsonProperty:
            switch value {
            case .object, .array: out["json"] = value
            default: throw .badData("the json of \(name) must be an object or an array")
            }
        case .vocabProperty:
            switch value {
            case .string(let s): out["vocab"] = .string(context.expand(s))
            case .array(let items) where !items.isEmpty:
                var expanded: [JSON] = []
                for item in items {
                    guard case .string(let s) = item else { throw .badData("the vocab of \(name) must hold strings") }
                    expanded.append(.string(context.expand(s)))
                }
                out["vocab"] = .array(expanded)
            default: throw .badData("the vocab of \(name) must be a string or an array of strings")
            }
        }
    }

    func isReserved(_ member: String) -> Bool { AttributeType.reservedMembers.contains(member) }

    /// A URI as NGSI-LD ids need: a scheme, a colon, no spaces or control characters.
    public static func isURI(_ s: String) -> Bool {
        let bytes = s.utf8
        guard bytes.count <= 1024, let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon != bytes.startIndex else { return false }
        // The scheme (RFC 3986): a letter, then letters, digits, "+", "-" or ".".
        func letter(_ b: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b | 0x20) }
        func schemeByte(_ b: UInt8) -> Bool { letter(b) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") }
        guard letter(bytes[bytes.startIndex]), bytes[bytes.startIndex..<colon].allSatisfy(schemeByte), bytes.index(after: colon) < bytes.endIndex else { return false }
        // No controls, spaces or characters a URI never holds as they are (bytes of other scripts, ≥ 0x80, are fine).
        return !bytes.contains { byte in
            switch byte {
            case 0..<0x21, UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\""), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "|"),
                UInt8(ascii: "\\"), UInt8(ascii: "^"), UInt8(ascii: "`"):
                true
            default: false
            }
        }
    }

    /// Attribute and type names: no characters that break queries or paths.
    public static func isValidName(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 512 else { return false }
        // The characters refused are all ASCII, and every byte of a multi-byte character is above ASCII, so
        // the bytes can be tested one by one.
        return !s.utf8.contains { $0 < 0x80 && forbiddenInNames[Int($0)] }
    }

    /// Which ASCII characters a name may not contain: controls, space, and `<>"'=;()[]{}|\^`,?&!~`.
    private static let forbiddenInNames: [Bool] = (0..<128).map { byte in
        byte < 0x21 || "<>\"'=;()[]{}|\\^`,?&!~".utf8.contains(UInt8(byte))
    }
}
