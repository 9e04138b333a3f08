import CityKit
import Synchronization
import Twin

/// How often a device's `Device` entity takes `dateLastValueReported`: at most once an `interval`. A device
/// that reports less often has every report written with its measurement; of a device that reports faster,
/// the first report of an interval is written with its measurement and the latest of the rest when the
/// interval is over (`due`). Its measurements are all written; only its Device entity lags, by at most an
/// interval, and keeps one instance an interval in its history instead of one a measurement.
public final class DeviceReports: Sendable {
    struct Key: Hashable {
        let tenant: Tenant, entityID: String
    }

    struct Entry {
        var written: ContinuousClock.Instant
        var pending: Entity?
    }

    public let interval: Duration
    private let entries = Mutex<[Key: Entry]>([:])

    public init(interval: Duration) {
        self.interval = interval
    }

    /// Whether `device` (a Device entity's update) is written now, with its measurement; if not, it is kept
    /// as the device's latest report until `due` gives it out.
    func admit(_ device: Entity, tenant: Tenant, now: ContinuousClock.Instant = .now) -> Bool {
        let key = Key(tenant: tenant, entityID: device.id)
        return entries.withLock { entries in
            if let entry = entries[key], now < entry.written + interval {
                entries[key]!.pending = device
                return false
            }
            entries[key] = Entry(written: now, pending: nil)
            return true
        }
    }

    /// The kept reports whose device's interval is over (all of them when `all`), taken out: each device's
    /// interval starts again now. Devices with nothing kept and an interval long over are forgotten.
    func due(now: ContinuousClock.Instant = .now, all: Bool = false) -> [(tenant: Tenant, device: Entity)] {
        entries.withLock { entries in
            var out: [(tenant: Tenant, device: Entity)] = []
            var kept: [Key: Entry] = [:]
            kept.reserveCapacity(entries.count)
            for (key, entry) in entries {
                let over = now >= entry.written + interval
                if let pending = entry.pending, over || all {
                    out.append((key.tenant, pending))
                    kept[key] = Entry(written: now, pending: nil)
                } else if entry.pending != nil || !over {
                    kept[key] = entry
                }
            }
            entries = kept
            return out
        }
    }

    /// Reports taken by `due` that could not be written: kept again (unless a later one came meanwhile), due
    /// at once.
    func restore(_ reports: [(tenant: Tenant, device: Entity)], now: ContinuousClock.Instant = .now) {
        entries.withLock { entries in
            for report in reports {
                let key = Key(tenant: report.tenant, entityID: report.device.id)
                guard entries[key]?.pending == nil else { continue }
                entries[key] = Entry(written: now - interval, pending: report.device)
            }
        }
    }

    /// Devices with a report kept.
    var pendingCount: Int { entries.withLock { $0.values.count { $0.pending != nil } } }
}
