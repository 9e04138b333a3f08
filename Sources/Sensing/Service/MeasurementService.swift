import CityKit
import Foundation
import Twin

/// Turns a device's measurement into attribute updates: each mapped value converted to its declared type,
/// with `observedAt` (the payload's `TimeInstant`, else the time of receipt) and `unitCode`; the device's
/// `Device` entity gets `dateLastValueReported` in the same transaction (with `reports`, at most once an
/// interval: see `DeviceReports`); a measurement that cannot be read writes nothing. Measurements that
/// arrive together are written together (`write`).
public struct MeasurementService: Sendable {
    let directory: DeviceDirectory
    let entities: EntityService
    let clock: any WallClock
    /// When set, how often a Device entity takes `dateLastValueReported` (nil: with every measurement).
    let reports: DeviceReports?

    public init(directory: DeviceDirectory, entities: EntityService, clock: any WallClock = SystemWallClock(), reports: DeviceReports? = nil) {
        self.directory = directory
        self.entities = entities
        self.clock = clock
        self.reports = reports
    }

    /// The most values one measurement may carry.
    static let maximumValues = 1000

    /// A measurement read and checked: the two entity updates it makes, in its device's tenant.
    public struct Reading: Sendable {
        public let tenant: Tenant
        public let asset: Entity
        public let device: Entity
    }

    /// Accepts one measurement from device `deviceID` with `apikey`. `tenant`, when the caller names one
    /// (`fiware-service`), must be the device's.
    public func accept(apikey: String?, deviceID: String?, payload: JSON, tenant: Tenant? = nil) async throws {
        let reading = try await read(apikey: apikey, deviceID: deviceID, payload: payload, tenant: tenant)
        if let failure = await write([reading])[0] { throw failure }
    }

    /// Reads one measurement without writing it: its device must be known under `apikey` (and in `tenant`
    /// when one is named), its values valid for their declared types.
    public func read(apikey: String?, deviceID: String?, payload: JSON, tenant: Tenant? = nil) async throws -> Reading {
        guard let apikey, Device.isKey(apikey), let deviceID, Device.isKey(deviceID) else {
            throw SensingError(.badRequest, "a measurement names its device's API key (k) and id (i)")
        }
        guard let device = try await directory.device(apikey: apikey, id: deviceID), tenant == nil || tenant == device.tenant else {
            throw SensingError(.deviceNotFound, "no device \(deviceID) with this API key")
        }
        let (asset, deviceEntity) = try Self.entities(device, payload: payload, now: clock.now())
        return Reading(tenant: device.tenant, asset: asset, device: deviceEntity)
    }

    /// Writes readings together, in as few transactions as their entities allow: a batch upsert names an
    /// entity once, so a reading whose entity an earlier one of `readings` also updates goes in a later
    /// round (every entity's updates are written in the order of `readings`, none merged away, and each
    /// keeps its own history instance). A reading's Device update waits in `reports` when its device's was
    /// written less than an interval ago. The result is each reading's failure (a `SensingError` for an
    /// update refused, the storage's error for a write that failed), nil where it was written.
    public func write(_ readings: [Reading]) async -> [(any Error)?] {
        let updates = readings.map { reading in
            reports?.admit(reading.device, tenant: reading.tenant) == false ? [reading.asset] : [reading.asset, reading.device]
        }
        var failures = [(any Error)?](repeating: nil, count: readings.count)
        for round in Self.rounds(updates.map { $0.map(\.id) }, tenants: readings.map(\.tenant)) {
            for (tenant, members) in Dictionary(grouping: round, by: { readings[$0].tenant }) {
                let outcome: EntityService.BatchOutcome
                do {
                    outcome = try await entities.upsert(members.flatMap { updates[$0] }, mode: .update, tenant: tenant)
                } catch {
                    for i in members { failures[i] = error }
                    continue
                }
                guard !outcome.errors.isEmpty else { continue }
                let errors = Dictionary(outcome.errors.map { ($0.id, $0.error) }, uniquingKeysWith: { first, _ in first })
                for i in members {
                    if let error = updates[i].lazy.compactMap({ errors[$0.id] }).first { failures[i] = SensingError(.badRequest, error.detail) }
                }
            }
        }
        return failures
    }

    /// Writes the Device updates that `reports` kept and whose interval is over (every one when `all`, at
    /// shutdown); the number written. What cannot be written is kept for the next call.
    @discardableResult
    public func writeDueReports(all: Bool = false) async throws -> Int {
        guard let reports else { return 0 }
        let due = reports.due(all: all)
        do {
            for (tenant, members) in Dictionary(grouping: due, by: \.tenant) {
                _ = try await entities.upsert(members.map(\.device), mode: .update, tenant: tenant)
            }
        } catch {
            reports.restore(due)
            throw error
        }
        return due.count
    }

    /// Updates (by entity id, `tenants[i]` the tenant of `ids[i]`) in rounds, by index: each one round after
    /// the last that holds one of its entities.
    static func rounds(_ ids: [[String]], tenants: [Tenant]) -> [[Int]] {
        struct Key: Hashable {
            let tenant: Tenant, id: String
        }
        var rounds: [[Int]] = []
        var lastRound: [Key: Int] = [:]
        for (i, entityIDs) in ids.enumerated() {
            let keys = entityIDs.map { Key(tenant: tenants[i], id: $0) }
            let round = keys.compactMap { lastRound[$0] }.max().map { $0 + 1 } ?? 0
            if round == rounds.count { rounds.append([]) }
            rounds[round].append(i)
            for key in keys { lastRound[key] = round }
        }
        return rounds
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
