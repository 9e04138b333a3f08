import CityKit

/// Device groups and devices, as provisioned.
public protocol DeviceStore: Sendable {
    /// Stores new groups, all or none; answers the API key of one that exists already (nothing stored then).
    func create(_ groups: [DeviceGroup]) async throws -> String?
    func groups(tenant: Tenant) async throws -> [DeviceGroup]
    func group(tenant: Tenant, apikey: String) async throws -> DeviceGroup?
    func group(tenant: Tenant, entityType: String) async throws -> DeviceGroup?
    func deleteGroup(tenant: Tenant, apikey: String) async throws -> Bool
    /// Stores new devices, all or none; answers the id of one that exists already (nothing stored then).
    func create(_ devices: [Device]) async throws -> String?
    func devices(tenant: Tenant, limit: Int, offset: Int) async throws -> (devices: [Device], total: Int)
    func device(tenant: Tenant, id: String) async throws -> Device?
    /// The device a measurement names, in whichever tenant it was provisioned.
    func device(apikey: String, id: String) async throws -> Device?
    func deleteDevice(tenant: Tenant, id: String) async throws -> Bool
}
