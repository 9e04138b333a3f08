import CityKit
import Foundation

/// A group of devices sharing an API key (`/iot/services`): the entity type its devices' entities get, and
/// the attribute mapping and static attributes they share unless a device says otherwise.
public struct DeviceGroup: Sendable, Equatable {
    public var tenant: Tenant
    public var apikey: String
    public var resource: String
    public var entityType: String
    public var attributes: [AttributeMapping]
    public var staticAttributes: [StaticAttribute]
    /// Only mapped attributes are kept; other keys in a payload are ignored.
    public var explicitAttrs: Bool

    public static func == (a: DeviceGroup, b: DeviceGroup) -> Bool { a.tenant == b.tenant && a.apikey == b.apikey && a.json == b.json }

    /// As the provisioning API shows it.
    public var json: JSON {
        [
            "apikey": .string(apikey), "resource": .string(resource), "entity_type": .string(entityType),
            "attributes": .array(attributes.map(\.json)), "static_attributes": .array(staticAttributes.map(\.json)),
            "explicitAttrs": .bool(explicitAttrs),
        ]
    }

    static func parse(_ json: JSON, tenant: Tenant) throws(SensingError) -> DeviceGroup {
        guard case .object(let o) = json else { throw SensingError(.wrongSyntax, "a service is a JSON object") }
        guard let apikey = o["apikey"]?.stringValue, Device.isKey(apikey) else { throw SensingError(.wrongSyntax, "a service needs an apikey (letters, digits, - and _)") }
        guard let type = o["entity_type"]?.stringValue, AttributeMapping.isName(type) else { throw SensingError(.wrongSyntax, "a service needs an entity_type") }
        let resource = o["resource"]?.stringValue ?? "/iot/json"
        guard resource == "/iot/json" else { throw SensingError(.wrongSyntax, "resource must be /iot/json") }
        var explicit = false
        if let value = o["explicitAttrs"] {
            guard case .bool(let b) = value else { throw SensingError(.wrongSyntax, "explicitAttrs must be true or false") }
            explicit = b
        }
        return DeviceGroup(
            tenant: tenant, apikey: apikey, resource: resource, entityType: type, attributes: try Device.mappings(o["attributes"]),
            staticAttributes: try Device.statics(o["static_attributes"]), explicitAttrs: explicit)
    }
}

/// A provisioned device (`/iot/devices`): which entity its measurements update, and how.
public struct Device: Sendable, Equatable {
    public var tenant: Tenant
    public var deviceID: String
    /// The API key its measurements must carry (its own, or its group's).
    public var apikey: String
    public var entityID: String
    public var entityType: String
    public var attributes: [AttributeMapping]
    public var staticAttributes: [StaticAttribute]
    public var explicitAttrs: Bool

    /// The NGSI-LD entity that stands for the device itself (Smart Data Models `Device`).
    public var deviceEntityID: String { "urn:ngsi-ld:Device:" + deviceID }

    public var json: JSON {
        [
            "device_id": .string(deviceID), "apikey": .string(apikey), "entity_name": .string(entityID), "entity_type": .string(entityType),
            "attributes": .array(attributes.map(\.json)), "static_attributes": .array(staticAttributes.map(\.json)),
            "explicitAttrs": .bool(explicitAttrs),
        ]
    }

    static func isKey(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 128 && s.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") }
    }

    static func mappings(_ value: JSON?) throws(SensingError) -> [AttributeMapping] {
        guard let value else { return [] }
        guard case .array(let items) = value else { throw SensingError(.wrongSyntax, "attributes must be an array") }
        var out: [AttributeMapping] = []
        for item in items { out.append(try AttributeMapping.parse(item)) }
        guard Set(out.map(\.objectID)).count == out.count else { throw SensingError(.wrongSyntax, "two attributes share an object_id") }
        return out
    }

    static func statics(_ value: JSON?) throws(SensingError) -> [StaticAttribute] {
        guard let value else { return [] }
        guard case .array(let items) = value else { throw SensingError(.wrongSyntax, "static_attributes must be an array") }
        var out: [StaticAttribute] = []
        for item in items { out.append(try StaticAttribute.parse(item)) }
        return out
    }

    /// A device as provisioned: its own members, filled in from its group (`group`, found by its apikey or
    /// entity type) where it has none.
    static func parse(_ json: JSON, tenant: Tenant, group: (String?, String?) async throws -> DeviceGroup?) async throws -> Device {
        guard case .object(let o) = json else { throw SensingError(.wrongSyntax, "a device is a JSON object") }
        guard let id = o["device_id"]?.stringValue, isKey(id) else { throw SensingError(.wrongSyntax, "a device needs a device_id (letters, digits, - and _)") }
        let ownKey = o["apikey"]?.stringValue
        if let ownKey, !isKey(ownKey) { throw SensingError(.wrongSyntax, "apikey of \(id) is not valid") }
        let ownType = o["entity_type"]?.stringValue
        if let ownType, !AttributeMapping.isName(ownType) { throw SensingError(.wrongSyntax, "entity_type of \(id) is not valid") }
        let found = try await group(ownKey, ownType)
        guard let apikey = ownKey ?? found?.apikey else { throw SensingError(.wrongSyntax, "device \(id) needs an apikey, or a service for its entity_type") }
        guard let type = ownType ?? found?.entityType else { throw SensingError(.wrongSyntax, "device \(id) needs an entity_type, or a service that gives one") }
        let entityID = o["entity_name"]?.stringValue ?? "urn:ngsi-ld:\(type):\(id)"
        guard entityID.contains(":"), entityID.count <= 512, !entityID.contains(" ") else { throw SensingError(.wrongSyntax, "entity_name of \(id) must be a URI") }
        var attributes = try mappings(o["attributes"])
        for inherited in found?.attributes ?? [] where !attributes.contains(where: { $0.objectID == inherited.objectID }) { attributes.append(inherited) }
        var statics = try statics(o["static_attributes"])
        for inherited in found?.staticAttributes ?? [] where !statics.contains(where: { $0.name == inherited.name }) { statics.append(inherited) }
        var explicit = found?.explicitAttrs ?? false
        if let value = o["explicitAttrs"] {
            guard case .bool(let b) = value else { throw SensingError(.wrongSyntax, "explicitAttrs must be true or false") }
            explicit = b
        }
        return Device(
            tenant: tenant, deviceID: id, apikey: apikey, entityID: entityID, entityType: type, attributes: attributes, staticAttributes: statics,
            explicitAttrs: explicit)
    }
}
