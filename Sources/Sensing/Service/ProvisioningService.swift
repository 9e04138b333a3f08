import CityKit
import Foundation
import Twin

/// The provisioning API's logic (`/iot/services`, `/iot/devices`): checks, stores, and makes each device's
/// entities exist: the entity its measurements update (with its static attributes) and its `Device` entity.
public struct ProvisioningService: Sendable {
    public let store: any DeviceStore
    let entities: EntityService
    let directory: DeviceDirectory

    public init(store: any DeviceStore, entities: EntityService, directory: DeviceDirectory) {
        self.store = store
        self.entities = entities
        self.directory = directory
    }

    static func list(_ body: JSON, _ member: String) throws(SensingError) -> [JSON] {
        guard case .array(let items)? = body[member], !items.isEmpty else { throw SensingError(.wrongSyntax, "the body needs a non-empty \(member) array") }
        guard items.count <= 1000 else { throw SensingError(.wrongSyntax, "at most 1000 \(member) at once") }
        return items
    }

    public func createGroups(_ body: JSON, tenant: Tenant) async throws {
        var groups: [DeviceGroup] = []
        for item in try Self.list(body, "services") { groups.append(try DeviceGroup.parse(item, tenant: tenant)) }
        guard Set(groups.map(\.apikey)).count == groups.count else { throw SensingError(.duplicateGroup, "two services share an apikey") }
        if let duplicate = try await store.create(groups) { throw SensingError(.duplicateGroup, "a service with apikey \(duplicate) exists") }
        directory.clear()
    }

    public func deleteGroup(apikey: String?, tenant: Tenant) async throws {
        guard let apikey, !apikey.isEmpty else { throw SensingError(.badRequest, "name the service by apikey") }
        guard try await store.deleteGroup(tenant: tenant, apikey: apikey) else { throw SensingError(.groupNotFound, "no service with apikey \(apikey)") }
        directory.clear()
    }

    public func createDevices(_ body: JSON, tenant: Tenant) async throws {
        var devices: [Device] = []
        for item in try Self.list(body, "devices") {
            devices.append(try await Device.parse(item, tenant: tenant) { apikey, type in
                if let apikey { return try await store.group(tenant: tenant, apikey: apikey) }
                if let type { return try await store.group(tenant: tenant, entityType: type) }
                return nil
            })
        }
        guard Set(devices.map(\.deviceID)).count == devices.count else { throw SensingError(.duplicateDevice, "two devices share a device_id") }
        for device in devices where try await store.device(tenant: tenant, id: device.deviceID) != nil {
            throw SensingError(.duplicateDevice, "device \(device.deviceID) exists")
        }
        // The entities first: a device is only stored once its entities exist.
        let outcome = try await entities.batchUpsert(.array(devices.flatMap(Self.entities)), mode: .update, context: CoreContext.context, tenant: tenant)
        if let failure = outcome.errors.first { throw SensingError(.badRequest, "entity \(failure.id): \(failure.error.detail)") }
        if let duplicate = try await store.create(devices) { throw SensingError(.duplicateDevice, "device \(duplicate) exists") }
        directory.clear()
    }

    /// The device's entities as provisioned: its asset with the static attributes, and its `Device`.
    static func entities(_ device: Device) -> [JSON] {
        var asset: [String: JSON] = ["id": .string(device.entityID), "type": .string(device.entityType)]
        for attribute in device.staticAttributes { asset[attribute.name] = attribute.attribute }
        let deviceEntity: JSON = [
            "id": .string(device.deviceEntityID), "type": "Device",
            "controlledAsset": ["type": "Relationship", "object": .string(device.entityID)],
            "deviceId": ["type": "Property", "value": .string(device.deviceID)],
        ]
        return [.object(asset), deviceEntity]
    }

    public func deleteDevice(_ id: String, tenant: Tenant) async throws {
        guard try await store.deleteDevice(tenant: tenant, id: id) else { throw SensingError(.deviceNotFound, "no device \(id)") }
        directory.clear()
    }

    public func device(_ id: String, tenant: Tenant) async throws -> Device {
        guard let device = try await store.device(tenant: tenant, id: id) else { throw SensingError(.deviceNotFound, "no device \(id)") }
        return device
    }
}
