import CityKit
import Foundation

/// Writes history in NGSI-LD's temporal representation: each attribute an array of instances (with
/// `instanceId`), or `temporalValues` (`{"type", "values": [[value, time], …]}`), or aggregated values
/// (`{"type", "avg": [[value, start, end], …], …}`). Several datasetIds give several such objects.
struct TemporalRepresentation {
    let base: Representation
    let timeProperty: TimeProperty

    func head(_ id: String, types: [String], context: LDContext) -> [String: JSON] {
        var out: [String: JSON] = ["id": .string(id)]
        if !types.isEmpty {
            let compacted = types.map { JSON.string(context.compact($0)) }
            out["type"] = compacted.count == 1 ? compacted[0] : .array(compacted)
        }
        return out
    }

    func instances(_ id: String, types: [String], _ series: [SeriesHistory], values: Bool, context: LDContext) -> JSON {
        var out = head(id, types: types, context: context)
        var normalized = base
        normalized.format = .normalized
        for (name, group) in Dictionary(grouping: series, by: \.name) {
            let key = context.compact(name)
            if values {
                let objects = group.sorted { ($0.datasetID ?? "") < ($1.datasetID ?? "") }.map { s -> JSON in
                    let type = s.instances.first?["type"]?.stringValue ?? "Property"
                    let member = AttributeType(rawValue: type)?.valueMember ?? "value"
                    let time = timeProperty == .observedAt ? "observedAt" : "modifiedAt"
                    var object: [String: JSON] = ["type": .string(type), "values": .array(s.instances.map { [$0[member] ?? .null, $0[time] ?? .null] })]
                    if let d = s.datasetID { object["datasetId"] = .string(d) }
                    return .object(object)
                }
                out[key] = objects.count == 1 ? objects[0] : .array(objects)
            } else {
                // One series is in the order of the time property already; several are merged by it.
                let time = timeProperty.rawValue
                let all = group.count == 1
                    ? group[0].instances
                    : group.flatMap(\.instances).sorted { ($0[time]?.stringValue ?? "") < ($1[time]?.stringValue ?? "") }
                out[key] = .array(all.map { normalized.attribute($0, context: context) })
            }
        }
        return .object(out)
    }

    func aggregated(_ id: String, types: [String], _ series: [SeriesAggregate], methods: [AggregationMethod], context: LDContext) -> JSON {
        var out = head(id, types: types, context: context)
        for (name, group) in Dictionary(grouping: series, by: \.name) {
            let objects = group.sorted { ($0.datasetID ?? "") < ($1.datasetID ?? "") }.map { s -> JSON in
                var object: [String: JSON] = ["type": "Property"]
                for method in methods {
                    object[method.rawValue] = .array(s.buckets.map {
                        [$0.values[method] ?? .null, .string(Timestamp.string($0.start)), .string(Timestamp.string($0.end))]
                    })
                }
                if let d = s.datasetID { object["datasetId"] = .string(d) }
                return .object(object)
            }
            out[context.compact(name)] = objects.count == 1 ? objects[0] : .array(objects)
        }
        return .object(out)
    }
}
