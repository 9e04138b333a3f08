import CityKit
import Foundation

/// How an entity is written in a response: normalized, concise or simplified (keyValues).
public enum RepresentationFormat: String, Sendable {
    case normalized, concise, keyValues

    /// From `format=` or `options=`; `simplified` is the standard's name for keyValues.
    public static func parse(format: String?, options: Set<String>) throws(NGSIError) -> RepresentationFormat {
        if let format {
            switch format {
            case "normalized": return .normalized
            case "concise": return .concise
            case "simplified", "keyValues": return .keyValues
            default: throw .badData("unknown format \(format)")
            }
        }
        if options.contains("keyValues") || options.contains("simplified") { return .keyValues }
        if options.contains("concise") { return .concise }
        return .normalized
    }
}

/// Renders stored (expanded) entities for a caller: compacts names with the caller's context, selects
/// attributes, and applies the format, `sysAttrs` and `lang`.
public struct Representation: Sendable {
    public var format: RepresentationFormat = .normalized
    public var sysAttrs = false
    public var lang: String?
    /// Expanded attribute names to keep (`attrs` / `pick`); nil keeps all.
    public var pick: Set<String>?
    /// Expanded names to drop (`omit`); may include `id` and `type`.
    public var omit: Set<String> = []
    public var keepID = true
    public var keepType = true

    public init() {}

    /// What `render` needs of each entity, for the query to read.
    public var reads: Reads {
        guard let pick, pick.isEmpty else { return .everything }
        return keepType || sysAttrs ? .withoutAttributes : .ids
    }

    public func render(_ entity: Entity, context: LDContext) -> JSON {
        var out: [String: JSON] = [:]
        // Sized once: a dictionary grown key by key is copied at each doubling.
        out.reserveCapacity(entity.attributes.count + 4)
        if keepID { out["id"] = .string(entity.id) }
        if keepType {
            let types = entity.types.map { JSON.string(context.compact($0)) }
            out["type"] = types.count == 1 ? types[0] : .array(types)
        }
        if sysAttrs && format != .keyValues {
            if let c = entity.createdAt { out["createdAt"] = .string(Timestamp.string(c)) }
            if let m = entity.modifiedAt { out["modifiedAt"] = .string(Timestamp.string(m)) }
        }
        for (name, instances) in entity.attributes where !instances.isEmpty {
            if let pick, !pick.contains(name) { continue }
            if omit.contains(name) { continue }
            let key = context.compact(name)
            switch format {
            case .keyValues:
                let chosen = instances.first(where: { $0["datasetId"] == nil }) ?? instances[0]
                out[key] = simplified(chosen, context: context)
            default:
                let rendered = instances.map { attribute($0, context: context) }
                out[key] = rendered.count == 1 ? rendered[0] : .array(rendered)
            }
        }
        return .object(out)
    }

    /// One attribute instance in normalized or concise form.
    func attribute(_ instance: [String: JSON], context: LDContext) -> JSON {
        var out: [String: JSON] = [:]
        out.reserveCapacity(instance.count + 1)
        let type = instance["type"]?.stringValue.flatMap(AttributeType.init(rawValue:)) ?? .property
        for (member, value) in instance {
            switch member {
            case "createdAt", "modifiedAt":
                if sysAttrs { out[member] = value }
            case "vocab":
                out["vocab"] = compactVocab(value, context: context)
            case "type", "value", "object", "languageMap", "valueList", "objectList", "json", "observedAt", "unitCode", "datasetId", "objectType", "instanceId":
                out[member] = value
            default:
                if case .object(let sub) = value {
                    out[context.compact(member)] = attribute(sub, context: context)
                }
            }
        }
        if type == .languageProperty, let lang, case .object(let map)? = instance["languageMap"] {
            out["languageMap"] = nil
            out["type"] = "Property"
            let (text, chosen) = Self.pickLanguage(map, lang)
            out["value"] = text
            out["lang"] = .string(chosen)
        }
        if format == .concise {
            out["type"] = nil
            let onlyValue = out.keys.allSatisfy { $0 == "value" }
            if type == .property, onlyValue, let value = out["value"], value.objectValue == nil { return value }
            if type == .geoProperty, onlyValue, let value = out["value"] { return value }
        }
        return .object(out)
    }

    func simplified(_ instance: [String: JSON], context: LDContext) -> JSON {
        let type = instance["type"]?.stringValue.flatMap(AttributeType.init(rawValue:)) ?? .property
        switch type {
        case .languageProperty:
            if let lang, case .object(let map)? = instance["languageMap"] { return Self.pickLanguage(map, lang).0 }
            return ["languageMap": instance["languageMap"] ?? .null]
        case .vocabProperty:
            return compactVocab(instance["vocab"] ?? .null, context: context)
        case .listRelationship:
            return .array((instance["objectList"]?.arrayValue ?? []).map { $0["object"] ?? $0 })
        default:
            return instance[type.valueMember] ?? .null
        }
    }

    func compactVocab(_ value: JSON, context: LDContext) -> JSON {
        switch value {
        case .string(let s): .string(context.compact(s))
        case .array(let items): .array(items.map { $0.stringValue.map { JSON.string(context.compact($0)) } ?? $0 })
        default: value
        }
    }

    /// The text for `lang` (`*` or a missing language falls back to the first language present).
    static func pickLanguage(_ map: [String: JSON], _ lang: String) -> (JSON, String) {
        for wanted in lang.split(separator: ",").map({ String($0.split(separator: ";")[0]).trimmingCharacters(in: .whitespaces) }) {
            if let text = map[wanted] { return (text, wanted) }
        }
        if let text = map["@none"] { return (text, "@none") }
        if let key = map.keys.sorted().first { return (map[key]!, key) }
        return (.null, lang)
    }
}
