import CityKit
import Foundation
import SQLKit
import Storage

/// `DeviceStore` on SQLite or PostgreSQL (tables `iot_groups`, `iot_devices`; each row's body is the
/// provisioning API's JSON of it).
public struct SQLDeviceStore: DeviceStore {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000) }

    public func create(_ groups: [DeviceGroup]) async throws -> String? {
        do {
            return try await insert(groups)
        } catch let duplicate as Duplicate {
            return duplicate.key
        }
    }

    private func insert(_ groups: [DeviceGroup]) async throws -> String? {
        try await database.write { db in
            for group in groups {
                let inserted = try await db.raw("""
                    INSERT INTO iot_groups (tenant, apikey, entity_type, body, created_at)
                    VALUES (\(bind: group.tenant.name), \(bind: group.apikey), \(bind: group.entityType), \(bind: JSONCoding.string(group.json)), \(bind: Self.now()))
                    ON CONFLICT (tenant, apikey) DO NOTHING RETURNING apikey
                    """).first() != nil
                // A duplicate undoes the whole request (this write's savepoint).
                if !inserted { throw Duplicate(key: group.apikey) }
            }
            try await self.announce(on: db)
            return nil
        }
    }

    /// Tells the other copies on this PostgreSQL, when the write commits, to forget the devices they cached.
    private func announce(on db: any SQLDatabase) async throws {
        try await Database.notify(SensingEvents.channel, SensingEvents.devicesChanged, kind: database.kind, on: db)
    }

    struct Duplicate: Error { let key: String }

    public func groups(tenant: Tenant) async throws -> [DeviceGroup] {
        try await database.read { db in
            try await db.raw("SELECT tenant, body FROM iot_groups WHERE tenant = \(bind: tenant.name) ORDER BY apikey").all().map(Self.group)
        }
    }

    public func group(tenant: Tenant, apikey: String) async throws -> DeviceGroup? {
        try await database.read { db in
            try await db.raw("SELECT tenant, body FROM iot_groups WHERE tenant = \(bind: tenant.name) AND apikey = \(bind: apikey)").first().map(Self.group)
        }
    }

    public func group(tenant: Tenant, entityType: String) async throws -> DeviceGroup? {
        try await database.read { db in
            try await db.raw("SELECT tenant, body FROM iot_groups WHERE tenant = \(bind: tenant.name) AND entity_type = \(bind: entityType) ORDER BY apikey LIMIT 1").first().map(Self.group)
        }
    }

    public func deleteGroup(tenant: Tenant, apikey: String) async throws -> Bool {
        try await database.write { db in
            let deleted = try await db.raw("DELETE FROM iot_groups WHERE tenant = \(bind: tenant.name) AND apikey = \(bind: apikey) RETURNING apikey").first() != nil
            if deleted { try await self.announce(on: db) }
            return deleted
        }
    }

    public func create(_ devices: [Device]) async throws -> String? {
        do {
            return try await database.write { db in
                for device in devices {
                    let inserted = try await db.raw("""
                        INSERT INTO iot_devices (tenant, device_id, apikey, body, created_at)
                        VALUES (\(bind: device.tenant.name), \(bind: device.deviceID), \(bind: device.apikey), \(bind: JSONCoding.string(device.json)), \(bind: Self.now()))
                        ON CONFLICT DO NOTHING RETURNING device_id
                        """).first() != nil
                    if !inserted { throw Duplicate(key: device.deviceID) }
                }
                try await self.announce(on: db)
                return nil
            }
        } catch let duplicate as Duplicate {
            return duplicate.key
        }
    }

    public func devices(tenant: Tenant, limit: Int, offset: Int) async throws -> (devices: [Device], total: Int) {
        try await database.read { db in
            let total = try await db.raw("SELECT COUNT(*) AS n FROM iot_devices WHERE tenant = \(bind: tenant.name)").first()?.decode(column: "n", as: Int.self) ?? 0
            let rows = try await db.raw("SELECT tenant, body FROM iot_devices WHERE tenant = \(bind: tenant.name) ORDER BY device_id LIMIT \(bind: limit) OFFSET \(bind: offset)").all()
            return (try rows.map(Self.device), total)
        }
    }

    public func device(tenant: Tenant, id: String) async throws -> Device? {
        try await database.read { db in
            try await db.raw("SELECT tenant, body FROM iot_devices WHERE tenant = \(bind: tenant.name) AND device_id = \(bind: id)").first().map(Self.device)
        }
    }

    public func device(apikey: String, id: String) async throws -> Device? {
        try await database.read { db in
            try await db.raw("SELECT tenant, body FROM iot_devices WHERE apikey = \(bind: apikey) AND device_id = \(bind: id)").first().map(Self.device)
        }
    }

    public func deleteDevice(tenant: Tenant, id: String) async throws -> Bool {
        try await database.write { db in
            let deleted = try await db.raw("DELETE FROM iot_devices WHERE tenant = \(bind: tenant.name) AND device_id = \(bind: id) RETURNING device_id").first() != nil
            if deleted { try await self.announce(on: db) }
            return deleted
        }
    }

    static func group(_ row: any SQLRow) throws -> DeviceGroup {
        try DeviceGroup.parse(try JSONCoding.parse(try row.decode(column: "body", as: String.self)), tenant: Tenant(try row.decode(column: "tenant", as: String.self)))
    }

    static func device(_ row: any SQLRow) throws -> Device {
        let body = try JSONCoding.parse(try row.decode(column: "body", as: String.self))
        let tenant = Tenant(try row.decode(column: "tenant", as: String.self))
        guard case .object(let o) = body, let id = o["device_id"]?.stringValue, let apikey = o["apikey"]?.stringValue,
            let entityID = o["entity_name"]?.stringValue, let type = o["entity_type"]?.stringValue
        else { throw SensingError(.internalError, "a stored device is not readable") }
        return Device(
            tenant: tenant, deviceID: id, apikey: apikey, entityID: entityID, entityType: type, attributes: try Device.mappings(o["attributes"]),
            staticAttributes: try Device.statics(o["static_attributes"]), explicitAttrs: o["explicitAttrs"] == .bool(true))
    }
}
