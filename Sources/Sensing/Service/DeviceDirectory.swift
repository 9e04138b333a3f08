import CityKit
import Foundation
import Synchronization

/// Devices by (API key, device id), cached in front of the store so that a stream of measurements does not
/// read the store for each. Changes made here clear the entries at once, changes made by another copy on
/// the same PostgreSQL when its notification arrives (`SensingEvents`), and at the latest when an entry's
/// `lifetime` ends. Unknown devices are remembered briefly too.
public final class DeviceDirectory: Sendable {
    let store: any DeviceStore
    let lifetime: Duration
    private let cache = Mutex<[String: (device: Device?, until: ContinuousClock.Instant)]>([:])

    public init(store: any DeviceStore, lifetime: Duration = .seconds(10)) {
        self.store = store
        self.lifetime = lifetime
    }

    public func device(apikey: String, id: String) async throws -> Device? {
        let key = apikey + "\u{1F}" + id
        let now = ContinuousClock.now
        if let entry = cache.withLock({ $0[key] }), entry.until > now { return entry.device }
        let device = try await store.device(apikey: apikey, id: id)
        let until = now + (device == nil ? .seconds(1) : lifetime)
        cache.withLock { cache in
            if cache.count > 100_000 { cache.removeAll() }
            cache[key] = (device, until)
        }
        return device
    }

    /// Forgets everything (after provisioning changes in this copy).
    public func clear() {
        cache.withLock { $0.removeAll() }
    }
}
