import Foundation

/// The Mosquitto broker the test command starts (`CITYTWIN_TEST_MQTT_URL`). In CI (`CI` set) a missing
/// broker is an error, not a silent skip.
enum TestBroker {
    struct Missing: Error, CustomStringConvertible {
        let description = "CITYTWIN_TEST_MQTT_URL is not set: the test command starts Mosquitto and sets it"
    }

    /// Host and port, or nil outside CI when no broker was started.
    static func address() throws -> (host: String, port: Int)? {
        guard let text = ProcessInfo.processInfo.environment["CITYTWIN_TEST_MQTT_URL"], let url = URL(string: text), let host = url.host else {
            if ProcessInfo.processInfo.environment["CI"] != nil { throw Missing() }
            return nil
        }
        return (host, url.port ?? 1883)
    }
}
