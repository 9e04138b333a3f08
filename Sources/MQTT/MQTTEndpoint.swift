import Foundation

/// Where an MQTT broker is, from a URL: `mqtt://host[:port]` (port 1883 by default) or `mqtts://host[:port]`
/// (TLS, port 8883 by default), with an optional topic as the path (`mqtt://host/city/air` → `city/air`).
public struct MQTTEndpoint: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let usesTLS: Bool
    /// The path without its leading `/`; "" when there is none.
    public let topic: String

    public init?(url text: String) {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else { return nil }
        switch scheme {
        case "mqtt": usesTLS = false
        case "mqtts": usesTLS = true
        default: return nil
        }
        if let port = url.port, !(1...65535).contains(port) { return nil }
        self.host = host
        self.port = url.port ?? (usesTLS ? 8883 : 1883)
        self.topic = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
    }

    public var description: String { "\(usesTLS ? "mqtts" : "mqtt")://\(host):\(port)" }
}
