import CityKit
import Foundation

/// An entity of the twin in expanded form: type and attribute names are full IRIs.
public struct Entity: Sendable, Equatable {
    public var id: String
    /// Expanded type IRIs; at least one.
    public var types: [String]
    /// Expanded attribute name → its instances (one per `datasetId`), each a normalized attribute object
    /// whose sub-attribute names are expanded too.
    public var attributes: [String: [[String: JSON]]]
    public var createdAt: Date?
    public var modifiedAt: Date?

    public init(id: String, types: [String], attributes: [String: [[String: JSON]]] = [:], createdAt: Date? = nil, modifiedAt: Date? = nil) {
        self.id = id
        self.types = types
        self.attributes = attributes
        self.createdAt = createdAt
        self.modifiedAt = modifiedAt
    }

    /// The attributes as one JSON object, the stored form.
    public var attributesJSON: JSON {
        .object(attributes.mapValues { .array($0.map(JSON.object)) })
    }

    public static func attributes(from json: JSON) -> [String: [[String: JSON]]] {
        guard let object = json.objectValue else { return [:] }
        var out: [String: [[String: JSON]]] = [:]
        for (name, value) in object {
            out[name] = (value.arrayValue ?? []).compactMap(\.objectValue)
        }
        return out
    }
}

/// The attribute types of NGSI-LD and the member that carries each one's value.
public enum AttributeType: String, Sendable, CaseIterable {
    case property = "Property"
    case relationship = "Relationship"
    case geoProperty = "GeoProperty"
    case languageProperty = "LanguageProperty"
    case listProperty = "ListProperty"
    case listRelationship = "ListRelationship"
    case jsonProperty = "JsonProperty"
    case vocabProperty = "VocabProperty"

    public var valueMember: String {
        switch self {
        case .property, .geoProperty: "value"
        case .relationship: "object"
        case .languageProperty: "languageMap"
        case .listProperty: "valueList"
        case .listRelationship: "objectList"
        case .jsonProperty: "json"
        case .vocabProperty: "vocab"
        }
    }

    public var iri: String { "https://uri.etsi.org/ngsi-ld/\(rawValue)" }

    /// Members of an attribute object that are not sub-attributes.
    public static let reservedMembers: Set<String> = [
        "type", "value", "object", "objectType", "languageMap", "valueList", "objectList", "json", "vocab",
        "observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt", "instanceId", "lang", "@context",
        "previousValue", "previousObject", "deletedAt",
    ]
}
