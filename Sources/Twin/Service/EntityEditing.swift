import CityKit
import Foundation

/// The attribute-level edits NGSI-LD defines, as pure functions on an `Entity`.
extension Entity {
    static let nullValue = JSON.string("urn:ngsi-ld:null")

    /// The entity with `now` for the system times it lacks.
    func withTimes(_ now: Date) -> Entity {
        var out = self
        out.createdAt = createdAt ?? now
        out.modifiedAt = modifiedAt ?? now
        return out
    }

    /// Stamps a new entity's system times on it and on every attribute instance.
    mutating func stampCreated(_ now: Date) {
        createdAt = now
        modifiedAt = now
        let time = JSON.string(Timestamp.string(now))
        for (name, instances) in attributes {
            attributes[name] = instances.map { Self.stamp($0, created: time, modified: time) }
        }
    }

    static func stamp(_ instance: [String: JSON], created: JSON, modified: JSON) -> [String: JSON] {
        var out = instance
        out["createdAt"] = instance["createdAt"] ?? created
        out["modifiedAt"] = modified
        // Sub-attributes are the objects among the members that are not reserved (tested in that order: cheaper).
        for (key, value) in instance {
            if case .object(let sub) = value, !AttributeType.reservedMembers.contains(key) {
                out[key] = .object(stamp(sub, created: created, modified: modified))
            }
        }
        return out
    }

    /// The index of the instance of `name` with the same datasetId as `instance`, if any.
    func instanceIndex(_ name: String, datasetId: JSON?) -> Int? {
        attributes[name]?.firstIndex { $0["datasetId"] == datasetId }
    }

    func has(_ name: String, datasetId: JSON?) -> Bool { instanceIndex(name, datasetId: datasetId) != nil }

    /// Sets an instance, replacing the one with the same datasetId (keeping its createdAt).
    mutating func put(_ name: String, _ instance: [String: JSON], now: Date) {
        let time = JSON.string(Timestamp.string(now))
        var stamped = Self.stamp(instance, created: time, modified: time)
        if let i = instanceIndex(name, datasetId: instance["datasetId"]) {
            stamped["createdAt"] = attributes[name]![i]["createdAt"] ?? time
            attributes[name]![i] = stamped
        } else {
            attributes[name, default: []].append(stamped)
        }
    }

    /// Merges an instance into the existing one: members replaced, sub-attributes merged, `urn:ngsi-ld:null`
    /// deletes a sub-attribute.
    mutating func merge(_ name: String, _ instance: [String: JSON], now: Date) {
        guard let i = instanceIndex(name, datasetId: instance["datasetId"]) else {
            put(name, instance, now: now)
            return
        }
        let time = JSON.string(Timestamp.string(now))
        var current = attributes[name]![i]
        let newType = instance["type"]
        if newType != current["type"] {
            // A change of attribute type replaces the value members of the old type.
            for member in ["value", "object", "languageMap", "valueList", "objectList", "json", "vocab"] { current[member] = nil }
        }
        for (key, value) in instance {
            if case .object(let sub) = value, !AttributeType.reservedMembers.contains(key) {
                if sub["value"] == Self.nullValue || sub["object"] == Self.nullValue {
                    current[key] = nil
                } else {
                    current[key] = .object(Self.stamp(sub, created: current[key]?["createdAt"] ?? time, modified: time))
                }
            } else if key != "createdAt" {
                current[key] = value
            }
        }
        current["modifiedAt"] = time
        attributes[name]![i] = current
    }

    /// Removes an instance (or all instances); false when there was nothing to remove.
    mutating func remove(_ name: String, datasetId: JSON?, all: Bool) -> Bool {
        guard let instances = attributes[name], !instances.isEmpty else { return false }
        if all {
            attributes[name] = nil
            return true
        }
        guard let i = instanceIndex(name, datasetId: datasetId) else { return false }
        attributes[name]!.remove(at: i)
        if attributes[name]!.isEmpty { attributes[name] = nil }
        return true
    }

    /// Whether an attribute instance in a request asks to delete (merge-patch's null).
    static func isDeletion(_ instance: [String: JSON]) -> Bool {
        instance["value"] == nullValue || instance["object"] == nullValue || instance["vocab"] == nullValue
            || instance["languageMap"] == nullValue || instance["json"] == nullValue
    }
}
