import CityKit
import Foundation
import Twin

/// Turns a device's measurement into attribute updates: each mapped value converted to its declared type,
/// with `observedAt` (the payload's `TimeInstant`, else the time of receipt) and `unitCode`; the device's
/// `Device` entity gets `dateLastValueReported`. Both in one transaction; a measurement that cannot be
/// read writes nothing.
public struct MeasurementService: Sendable {
    let directory: DeviceDirectory
    let entities: EntityService
    let clock: any WallClock

    public init(directory: DeviceDirectory, entities: EntityService, clock: any WallClock = SystemWallClock()) {
        self.directory = directory
        self.entities = entities
        self.clock = clock
    }

    /// The most values one measurement may carry.
    static let maximumValues = 1000

    /// Accepts one measurement from device `deviceID` with `apikey`. `tenant`, when the caller names one
    /// (`fiware-service`), must be the device's.
    public func accept(apikey: String?, deviceID: String?, payload: JSON, tenant: Tenant? = nil) async throws {
        guard let apikey, Device.isKey(apikey), let deviceID, Device.isKey(deviceID) else {
            throw SensingError(.badRequest, "a measurement names its device's API key (k) and id (i)")
        }
        guard let device = try await directory.device(apikey: apikey, id: deviceID), tenant == nil || tenant == device.tenant else {
            throw SensingError(.deviceNotFound, "no device \(deviceID) with this API key")
        }
        let (asset, deviceEntity) = try Self.entities(device, payload: payload, now: clock.now())
        let outcome = try await entities.upsert([asset, deviceEntity], mode: .update, tenant: device.tenant)
        if let failure = outcome.errors.first { throw SensingError(.badRequest, failure.error.detail) }
    }

    /// The two entity updates a measurement makes, already checked.
    static func entities(_ device: Device, payload: JSON, now: Date) throws(SensingError) -> (Entity, Entity) {
        guard case .object(let values) = payload else { throw SensingError(.badRequest, "a measurement is a JSON object of values") }
        guard values.count <= maximumValues else { throw SensingError(.badRequest, "a measurement may carry at most \(maximumValues) values") }
        var observedAt = Timestamp.string(now)
        if let instant = values["TimeInstant"] {
            guard let text = instant.stringValue, let date = Timestamp.parse(text) else { throw SensingError(.badRequest, "TimeInstant must be an ISO 8601 date-time") }
            observedAt = Timestamp.string(date)
        }
        var asset: [String: JSON] = ["id": .string(device.entityID), "type": .string(device.entityType)]
        for (key, raw) in values where key != "TimeInstant" {
            let mapping: AttributeMapping
            if let mapped = device.attributes.first(where: { $0.objectID == key }) {
                mapping = mapped
            } else {
                if device.explicitAttrs { continue }
                guard AttributeMapping.isName(key) else { throw SensingError(.badRequest, "\(key) is not a valid attribute name") }
                mapping = AttributeMapping(objectID: key, name: key, type: "Property")
            }
            asset[mapping.name] = try mapping.attribute(raw, observedAt: observedAt)
        }
        let reported: JSON = [
            "id": .string(device.deviceEntityID), "type": "Device",
            "dateLastValueReported": ["type": "Property", "value": ["@type": "DateTime", "@value": .string(observedAt)]],
        ]
        let input = EntityInput(context: CoreContext.context, now: now)
        do throws(NGSIError) {
            return (try input.entity(.object(asset)), try input.entity(reported))
        } catch {
            throw SensingError(.badRequest, error.detail)
        }
    }
}
