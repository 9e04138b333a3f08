import CityKit
import Foundation
import MQTT
import Synchronization

/// Delivers to `mqtt://host:port/topic` and `mqtts://host:port/topic` (TLS) endpoints: publishes the
/// notification's body (the same as over HTTP) at QoS 1 on the topic; success is the broker's
/// acknowledgement. One connection per broker, kept open. Over TLS the broker's certificate must chain to
/// `caFile`, or to the system's CAs.
public final class MQTTNotificationSender: NotificationSender {
    private let clients = Mutex<[String: MQTTClient]>([:])
    let clientPrefix: String
    let caFile: String?

    public init(clientPrefix: String = "citytwin", caFile: String? = nil) {
        self.clientPrefix = clientPrefix
        self.caFile = caFile
    }

    public func send(_ item: OutboxItem, notifiedAt: Date) async throws {
        guard let broker = MQTTEndpoint(url: item.endpoint), !broker.topic.isEmpty else {
            throw HTTPNotificationSender.Failure(description: "\(item.endpoint) is not an mqtt:// or mqtts:// endpoint with a topic")
        }
        let client = try await self.client(broker)
        let envelope = try JSONCoding.parse(item.envelope)
        try await client.publish(topic: broker.topic, payload: Array(NotificationBody.text(item, envelope: envelope, notifiedAt: notifiedAt).utf8))
    }

    /// The broker's connection, made on first use; it reconnects by itself.
    func client(_ broker: MQTTEndpoint) async throws -> MQTTClient {
        let key = broker.description
        if let existing = clients.withLock({ $0[key] }) {
            if !existing.isConnected { try await existing.waitConnected(timeout: .seconds(5)) }
            return existing
        }
        let client = try MQTTClient(broker: broker, clientID: "\(clientPrefix)-\(UUID().uuidString.prefix(12).lowercased())", caFile: caFile)
        let chosen = clients.withLock { clients -> MQTTClient in
            if let raced = clients[key] { return raced }
            clients[key] = client
            return client
        }
        guard chosen === client else {
            client.close()
            return chosen
        }
        do {
            try await client.connect(timeout: .seconds(5))
        } catch {
            // Not kept: the next notification to this broker tries a new connection.
            clients.withLock { clients in if clients[key] === client { clients[key] = nil } }
            client.close()
            throw error
        }
        return chosen
    }

    public func close() {
        for client in clients.withLock({ Array($0.values) }) { client.close() }
    }
}
