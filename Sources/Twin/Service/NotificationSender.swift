import AsyncHTTPClient
import CityKit
import Foundation
import NIOCore
import NIOHTTP1

/// Sends one notification to its endpoint; throws when the endpoint did not take it.
public protocol NotificationSender: Sendable {
    func send(_ item: OutboxItem, notifiedAt: Date) async throws
}

/// A notification's body: the standard's envelope around the stored data, the @context inside for
/// `application/ld+json`.
enum NotificationBody {
    static func text(_ item: OutboxItem, envelope: JSON, notifiedAt: Date) -> String {
        var text = "{\"id\":" + JSONCoding.string(.string(item.notificationID)) + ",\"type\":\"Notification\",\"subscriptionId\":"
            + JSONCoding.string(.string(item.subscriptionID)) + ",\"notifiedAt\":\"" + Timestamp.string(notifiedAt) + "\""
        if let context = envelope["context"], context != .null { text += ",\"@context\":" + JSONCoding.string(context) }
        return text + ",\"data\":" + item.data + "}"
    }

    static func headers(_ envelope: JSON) -> [(String, String)] {
        (envelope["headers"]?.arrayValue ?? []).compactMap { pair in
            guard let name = pair.arrayValue?.first?.stringValue, let value = pair.arrayValue?.last?.stringValue else { return nil }
            return (name, value)
        }
    }
}

/// Delivers over HTTP(S) by POST; any 2xx answer is success.
public struct HTTPNotificationSender: NotificationSender {
    let client: HTTPClient
    let timeout: TimeAmount

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init(client: HTTPClient = .shared, timeout: TimeAmount = .seconds(10)) {
        self.client = client
        self.timeout = timeout
    }

    public func send(_ item: OutboxItem, notifiedAt: Date) async throws {
        let envelope = try JSONCoding.parse(item.envelope)
        var request = HTTPClientRequest(url: item.endpoint)
        request.method = .POST
        for (name, value) in NotificationBody.headers(envelope) { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: NotificationBody.text(item, envelope: envelope, notifiedAt: notifiedAt)))
        let response = try await client.execute(request, timeout: timeout)
        // The answer's body is not needed, but is read so the connection can be used again.
        _ = try? await response.body.collect(upTo: 64 * 1024)
        guard (200..<300).contains(response.status.code) else { throw Failure(description: "\(item.endpoint) answered \(response.status.code)") }
    }
}

/// Chooses the sender by the endpoint's scheme.
public struct NotificationSenders: NotificationSender {
    let http: any NotificationSender
    let mqtt: (any NotificationSender)?

    public init(http: any NotificationSender = HTTPNotificationSender(), mqtt: (any NotificationSender)? = MQTTNotificationSender()) {
        self.http = http
        self.mqtt = mqtt
    }

    public func send(_ item: OutboxItem, notifiedAt: Date) async throws {
        if item.endpoint.hasPrefix("mqtt://") || item.endpoint.hasPrefix("mqtts://") {
            guard let mqtt else { throw HTTPNotificationSender.Failure(description: "MQTT delivery is not configured") }
            try await mqtt.send(item, notifiedAt: notifiedAt)
        } else {
            try await http.send(item, notifiedAt: notifiedAt)
        }
    }
}
