import CityKit
import Foundation
import MQTT
import Synchronization

/// Delivers to `mqtt://host:port/topic` endpoints: publishes the notification's body (the same as over HTTP)
/// at QoS 1 on the topic; success is the broker's acknowledgement. One connection per broker, kept open.
public final class MQTTNotificationSender: NotificationSender {
    private let clients = Mutex<[String: MQTTClient]>([:])
    let clientPrefix: String

    public init(clientPrefix: String = "citytwin") {
        self.clientPrefix = clientPrefix
    }

    public func send(_ item: OutboxItem, notifiedAt: Date) async throws {
        guard let url = URL(string: item.endpoint), let host = url.host, url.scheme?.lowercased() == "mqtt" else {
            throw HTTPNotificationSender.Failure(description: "\(item.endpoint) is not an mqtt:// endpoint (mqtts is not supported yet)")
        }
        let topic = String(url.path.dropFirst())
        let client = try await self.client(host: host, port: url.port ?? 1883)
        let envelope = try JSONCoding.parse(item.envelope)
        try await client.publish(topic: topic, payload: Array(NotificationBody.text(item, envelope: envelope, notifiedAt: notifiedAt).utf8))
    }

    /// The broker's connection, made on first use; it reconnects by itself.
    func client(host: String, port: Int) async throws -> MQTTClient {
        let key = "\(host):\(port)"
        if let existing = clients.withLock({ $0[key] }) {
            if !existing.isConnected { try await existing.waitConnected(timeout: .seconds(5)) }
            return existing
        }
        let client = try MQTTClient(host: host, port: port, clientID: "\(clientPrefix)-\(UUID().uuidString.prefix(12).lowercased())")
        let chosen = clients.withLock { clients -> MQTTClient in
            if let raced = clients[key] { return raced }
            clients[key] = client
            return client
        }
        if chosen === client { try await client.connect(timeout: .seconds(5)) } else { client.close() }
        return chosen
    }

    public func close() {
        for client in clients.withLock({ Array($0.values) }) { client.close() }
    }
}
