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
    /// Queues that write at once, each the measurements of its share of the devices in arrival order.
    let lanes: Int
    /// The most measurements one queue writes in one go.
    let batchSize: Int
    /// The most measurements waiting, over all queues.
    let capacity: Int
    let accepted = Counter(label: "citytwin_mqtt_measurements_total")
    private let counts = Mutex<(accepted: Int, dropped: Int)>((0, 0))

    /// Measurements accepted and dropped since start (also in `/metrics`).
    public var acceptedCount: Int { counts.withLock { $0.accepted } }
    public var droppedCount: Int { counts.withLock { $0.dropped } }

    public static let topic = "/+/+/attrs"
    /// The subscription is shared (`$share/{group}/…`): copies of the platform in one group split the
    /// measurements between them instead of each taking every one.
    let shareGroup: String

    /// How long the thread reading the broker waits for room in a full queue before it drops a message.
    let patience: Duration

    /// Messages wait in `lanes` queues of `capacity / lanes`; a device's messages always go to the same
    /// queue, so they are written in the order they arrived. When a queue is full, the thread that reads
    /// the broker waits for room (the broker keeps what it has not handed over yet), and drops the message
    /// as `overload` only when the queue has had no room for `patience` (the storage has stopped taking
    /// writes).
    public init(
        measurements: MeasurementService, broker: MQTTEndpoint, caFile: String? = nil, shareGroup: String = "citytwin",
        lanes: Int = 4, batchSize: Int = 500, capacity: Int = 100_000, patience: Duration = .seconds(10), logger: Logger
    ) {
        self.patience = patience
        self.measurements = measurements
        self.shareGroup = shareGroup
        self.broker = broker
        self.caFile = caFile
        self.lanes = max(1, lanes)
        self.batchSize = max(1, batchSize)
        self.capacity = max(self.lanes, capacity)
        self.logger = logger
    }

    func dropped(_ reason: String) -> Counter {
        Counter(label: "citytwin_mqtt_measurements_dropped_total", dimensions: [("reason", reason)])
    }

    /// Runs until cancelled: connects (retrying while the broker is away), then takes messages. Each queue
    /// writes what has arrived since its last write as one batch, so that the write path's transactions hold
    /// many measurements when they come fast and a lone one is written at once.
    public func run() async throws {
        let lanes = self.lanes
        let queues = (0..<lanes).map { _ in BatchQueue<MQTTClient.Message>(capacity: capacity / lanes) }
        let patience = self.patience
        let client = try MQTTClient(broker: broker, clientID: "citytwin-intake-\(UUID().uuidString.prefix(12).lowercased())", caFile: caFile) { message in
            var hasher = Hasher()
            hasher.combine(message.topic)
            let lane = Int(UInt(bitPattern: hasher.finalize()) % UInt(lanes))
            if !queues[lane].push(message, waitingUpTo: patience) { self.drop("overload", message, "the intake's queue is full or closed") }
        }
        defer {
            client.close()
            for queue in queues { queue.finish() }
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
        // Cancelled (at shutdown): no more messages are taken, and those already taken (the broker has their
        // acknowledgements) are written before this returns.
        await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { group in
                for queue in queues {
                    group.addTask {
                        while let batch = await queue.next(maximum: self.batchSize) { await self.handle(batch) }
                    }
                }
            }
        } onCancel: {
            client.close()
            for queue in queues { queue.finish() }
        }
        logger.info("MQTT intake stopped", metadata: ["accepted": "\(acceptedCount)", "dropped": "\(droppedCount)"])
    }

    /// Reads the messages (dropping those that cannot be taken), then writes the rest together.
    func handle(_ messages: [MQTTClient.Message]) async {
        var readings: [MeasurementService.Reading] = []
        var taken: [MQTTClient.Message] = []
        readings.reserveCapacity(messages.count)
        for message in messages {
            if let reading = await read(message) {
                readings.append(reading)
                taken.append(message)
            }
        }
        guard !readings.isEmpty else { return }
        var written = 0
        for (message, failure) in zip(taken, await measurements.write(readings)) {
            switch failure {
            case nil: written += 1
            case let refused as SensingError: drop("malformed", message, refused.message)
            case let failure?: drop("failed", message, "\(failure)")
            }
        }
        accepted.increment(by: written)
        counts.withLock { $0.accepted += written }
    }

    /// The measurement a message carries, or nil (and the message dropped) when it cannot be taken.
    func read(_ message: MQTTClient.Message) async -> MeasurementService.Reading? {
        let parts = message.topic.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].isEmpty, parts[3] == "attrs" else {
            drop("topic", message, "not /{apikey}/{device_id}/attrs")
            return nil
        }
        let payload: JSON
        do {
            payload = try JSONCoding.parse(Data(message.payload))
        } catch {
            drop("malformed", message, "not JSON")
            return nil
        }
        do {
            return try await measurements.read(apikey: String(parts[1]), deviceID: String(parts[2]), payload: payload)
        } catch let error as SensingError {
            drop(error.name == .deviceNotFound ? "unknown_device" : "malformed", message, error.message)
        } catch {
            drop("failed", message, "\(error)")
        }
        return nil
    }

    func drop(_ reason: String, _ message: MQTTClient.Message, _ why: String) {
        dropped(reason).increment()
        counts.withLock { $0.dropped += 1 }
        logger.warning("MQTT measurement dropped", metadata: ["reason": "\(reason)", "topic": "\(message.topic)", "why": "\(why)"])
    }
}
