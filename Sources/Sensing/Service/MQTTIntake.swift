import CityKit
import Foundation
import Logging
import MQTT
import Metrics
import Synchronization

/// Measurements by MQTT: subscribes to `/{apikey}/{device_id}/attrs` on the configured broker (as the shared
/// subscription `$share/citytwin/…`, so that copies split the stream) and accepts each message as
/// `POST /iot/json` would. A message that cannot be accepted (unknown API key or device,
/// malformed payload) is dropped, logged and counted in `citytwin_mqtt_measurements_dropped_total{reason}`.
public final class MQTTIntake: Sendable {
    let measurements: MeasurementService
    let broker: MQTTEndpoint
    /// Over TLS (`mqtts://`): the CA file the broker's certificate must chain to (nil: the system's CAs).
    let caFile: String?
    let logger: Logger
    /// Measurements being written at once (their writes merge into shared transactions).
    let concurrency: Int
    let accepted = Counter(label: "citytwin_mqtt_measurements_total")
    private let counts = Mutex<(accepted: Int, dropped: Int)>((0, 0))

    /// Measurements accepted and dropped since start (also in `/metrics`).
    public var acceptedCount: Int { counts.withLock { $0.accepted } }
    public var droppedCount: Int { counts.withLock { $0.dropped } }

    public static let topic = "/+/+/attrs"
    /// The subscription is shared (`$share/{group}/…`): copies of the platform in one group split the
    /// measurements between them instead of each taking every one.
    let shareGroup: String

    public init(
        measurements: MeasurementService, broker: MQTTEndpoint, caFile: String? = nil, shareGroup: String = "citytwin", concurrency: Int = 256, logger: Logger
    ) {
        self.measurements = measurements
        self.shareGroup = shareGroup
        self.broker = broker
        self.caFile = caFile
        self.concurrency = concurrency
        self.logger = logger
    }

    func dropped(_ reason: String) -> Counter {
        Counter(label: "citytwin_mqtt_measurements_dropped_total", dimensions: [("reason", reason)])
    }

    /// Runs until cancelled: connects (retrying while the broker is away), then takes messages.
    public func run() async throws {
        let (stream, continuation) = AsyncStream.makeStream(of: MQTTClient.Message.self, bufferingPolicy: .bufferingOldest(100_000))
        let overloaded = dropped("overload")
        let client = try MQTTClient(broker: broker, clientID: "citytwin-intake-\(UUID().uuidString.prefix(12).lowercased())", caFile: caFile) { message in
            if case .dropped = continuation.yield(message) { overloaded.increment() }
        }
        defer {
            client.close()
            continuation.finish()
        }
        try client.subscribe("$share/\(shareGroup)/" + Self.topic)
        while true {
            do {
                try await client.connect()
                break
            } catch {
                if Task.isCancelled { return }
                logger.warning("MQTT broker not reachable; trying again", metadata: ["broker": "\(broker)", "error": "\(error)"])
                try? await Task.sleep(for: .seconds(5))
            }
        }
        logger.info("taking measurements by MQTT", metadata: ["broker": "\(broker)", "topic": "\(Self.topic)"])
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for await message in stream {
                if running >= concurrency {
                    await group.next()
                    running -= 1
                }
                group.addTask { await self.handle(message) }
                running += 1
            }
        }
    }

    func handle(_ message: MQTTClient.Message) async {
        let parts = message.topic.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].isEmpty, parts[3] == "attrs" else {
            drop("topic", message, "not /{apikey}/{device_id}/attrs")
            return
        }
        let payload: JSON
        do {
            payload = try JSONCoding.parse(Data(message.payload))
        } catch {
            drop("malformed", message, "not JSON")
            return
        }
        do {
            try await measurements.accept(apikey: String(parts[1]), deviceID: String(parts[2]), payload: payload)
            accepted.increment()
            counts.withLock { $0.accepted += 1 }
        } catch let error as SensingError {
            drop(error.name == .deviceNotFound ? "unknown_device" : "malformed", message, error.message)
        } catch {
            drop("failed", message, "\(error)")
        }
    }

    func drop(_ reason: String, _ message: MQTTClient.Message, _ why: String) {
        dropped(reason).increment()
        counts.withLock { $0.dropped += 1 }
        logger.warning("MQTT measurement dropped", metadata: ["reason": "\(reason)", "topic": "\(message.topic)", "why": "\(why)"])
    }
}
