import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Synchronization

/// Notification latency: 100 subscriptions, a paced stream of single-attribute updates, and a receiver on
/// loopback that notes, for each notification, how long after its update was sent it arrived.
extension Benchmark {
    func measureNotifications(_ load: Load) async throws {
        guard notificationSeconds > 0 else { return }
        let (subscriptions, perSubscription) = (100, 10)
        let arrivals = Arrivals()
        try await Receiver.serve(note: { data in
            let now = Arrivals.micros()
            for entity in data { if let sent = entity["sentAt"] as? NSNumber { arrivals.add(Double(now - sent.int64Value) / 1000) } }
        }) { url in
            // Each subscription selects its own ten sensors by id pattern, so every update is matched against all
            // hundred and notifies exactly one.
            for k in 0..<subscriptions {
                try await load.send(.POST, "/ngsi-ld/v1/subscriptions", """
                    {"type":"Subscription","entities":[{"type":"NoiseSensor","idPattern":"^urn:ngsi-ld:NoiseSensor:\(k)-"}],"watchedAttributes":["sentAt"],
                     "notification":{"format":"keyValues","attributes":["sentAt"],"endpoint":{"uri":"\(url)/\(k)"}}}
                    """)
            }
            let sensors = (0..<subscriptions).flatMap { k in (0..<perSubscription).map { "urn:ngsi-ld:NoiseSensor:\(k)-\($0)" } }
            let batch = "[" + sensors.map { #"{"id":"\#($0)","type":"NoiseSensor","sentAt":{"type":"Property","value":0}}"# }.joined(separator: ",") + "]"
            try await load.send(.POST, "/ngsi-ld/v1/entityOperations/upsert", batch)
            try await Task.sleep(for: .seconds(1))
            arrivals.reset()

            let rate = 1000
            let total = rate * notificationSeconds
            let start = ContinuousClock.now
            let workers = 64
            try await withThrowingTaskGroup(of: Void.self) { senders in
                for w in 0..<workers {
                    senders.addTask {
                        var i = w
                        while i < total {
                            try await Task.sleep(until: start + .microseconds(Int64(i) * 1_000_000 / Int64(rate)), clock: .continuous)
                            let id = sensors[i % sensors.count]
                            try await load.send(.PATCH, "/ngsi-ld/v1/entities/\(id)/attrs/sentAt", #"{"value":\#(Arrivals.micros())}"#)
                            i += workers
                        }
                    }
                }
                try await senders.waitForAll()
            }
            let sendSeconds = (ContinuousClock.now - start).seconds
            let deadline = ContinuousClock.now + .seconds(30)
            while arrivals.count < total, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            let ms = arrivals.sorted
            say(String(format: "notifications: %d subscriptions, %.0f updates/s: latency p50 %.1f ms, p99 %.1f ms, max %.1f ms (target p99 ≤ 50 ms); %d of %d arrived",
                       subscriptions, Double(total) / sendSeconds, percentile(ms, 50), percentile(ms, 99), ms.last ?? 0, ms.count, total))
        }
    }
}

/// Arrival latencies in milliseconds, noted by the receiver.
final class Arrivals: Sendable {
    private let values = Mutex<[Double]>([])

    static func micros() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000) }

    func add(_ ms: Double) { values.withLock { $0.append(ms) } }
    func reset() { values.withLock { $0 = [] } }
    var count: Int { values.withLock { $0.count } }
    var sorted: [Double] { values.withLock { $0 }.sorted() }
}
