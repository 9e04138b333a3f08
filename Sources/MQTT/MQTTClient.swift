import CMosquitto
import Foundation
import Synchronization

/// An MQTT 3.1.1 client over libmosquitto (Debian `libmosquitto-dev`), with its network loop on
/// libmosquitto's own thread: publishes at QoS 1 answer when the broker has acknowledged them, messages
/// on subscribed topics arrive through `onMessage` (on that thread; keep it short). It reconnects by
/// itself and subscribes again after each reconnect. With `tls` it speaks MQTT over TLS and checks the
/// broker's certificate and host name.
public final class MQTTClient: Sendable {
    /// TLS to the broker: its certificate must chain to `caFile` (PEM), or to the system's CAs when nil.
    public struct TLS: Sendable, Equatable {
        public var caFile: String?
        public init(caFile: String? = nil) { self.caFile = caFile }
        /// Where Debian keeps the system's CA certificates.
        static let systemCertificates = "/etc/ssl/certs"
    }

    public struct Message: Sendable {
        public let topic: String
        public let payload: [UInt8]
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// libmosquitto's handle. Its calls are safe from any thread once the loop thread runs.
    private nonisolated(unsafe) let handle: OpaquePointer
    let host: String
    let port: Int
    private let onMessage: @Sendable (Message) -> Void
    private let state = Mutex(State())

    struct State {
        var connected = false
        var closed = false
        var connectWaiters: [CheckedContinuation<Void, any Error>] = []
        var publishes: [Int32: CheckedContinuation<Void, any Error>] = [:]
        var topics: [(String, Int32)] = []
        /// libmosquitto's last error message (e.g. a refused certificate), for the operator.
        var lastError: String?
    }

    private static let initialized: Bool = {
        mosquitto_lib_init()
        return true
    }()

    public init(host: String, port: Int, clientID: String, tls: TLS? = nil, onMessage: @escaping @Sendable (Message) -> Void = { _ in }) throws {
        _ = Self.initialized
        guard let handle = mosquitto_new(clientID, true, nil) else { throw Failure(description: "libmosquitto could not make a client") }
        if let tls {
            var rc = mosquitto_tls_set(handle, tls.caFile, tls.caFile == nil ? TLS.systemCertificates : nil, nil, nil, nil)
            // 1 = SSL_VERIFY_PEER: the broker's certificate must verify; its host name is checked too.
            if rc == MOSQ_ERR_SUCCESS.rawValue { rc = mosquitto_tls_opts_set(handle, 1, nil, nil) }
            if rc == MOSQ_ERR_SUCCESS.rawValue { rc = mosquitto_tls_insecure_set(handle, false) }
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                mosquitto_destroy(handle)
                throw Failure(description: "MQTT TLS setup (CA \(tls.caFile ?? TLS.systemCertificates)): \(Self.text(rc))")
            }
        }
        self.handle = handle
        self.host = host
        self.port = port
        self.onMessage = onMessage
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        mosquitto_connect_callback_set(handle, mqttConnected)
        mosquitto_disconnect_callback_set(handle, mqttDisconnected)
        mosquitto_publish_callback_set(handle, mqttPublished)
        mosquitto_message_callback_set(handle, mqttMessage)
        mosquitto_log_callback_set(handle, mqttLog)
        mosquitto_reconnect_delay_set(handle, 1, 30, true)
    }

    /// A client of `broker`, over TLS for `mqtts://` (the certificate checked against `caFile`, else the system's CAs).
    public convenience init(broker: MQTTEndpoint, clientID: String, caFile: String? = nil, onMessage: @escaping @Sendable (Message) -> Void = { _ in }) throws {
        try self.init(host: broker.host, port: broker.port, clientID: clientID, tls: broker.usesTLS ? TLS(caFile: caFile) : nil, onMessage: onMessage)
    }

    /// Connects (and keeps reconnecting); answers once connected, or throws after `timeout`.
    public func connect(timeout: Duration = .seconds(10)) async throws {
        var rc = mosquitto_connect_async(handle, host, Int32(port), 30)
        guard rc == MOSQ_ERR_SUCCESS.rawValue || rc == MOSQ_ERR_ERRNO.rawValue else {
            // A TLS handshake can fail right here; libmosquitto has logged why (e.g. the certificate).
            throw Failure(description: "MQTT connect to \(host):\(port): \(Self.text(rc))\(lastErrorSuffix)")
        }
        rc = mosquitto_loop_start(handle)
        guard rc == MOSQ_ERR_SUCCESS.rawValue else { throw Failure(description: "MQTT loop: \(Self.text(rc))") }
        try await waitConnected(timeout: timeout)
    }

    public var isConnected: Bool { state.withLock { $0.connected } }

    /// " (libmosquitto's last error)" for a failure's description, or "".
    private var lastErrorSuffix: String { state.withLock { $0.lastError }.map { " (\($0))" } ?? "" }

    public func waitConnected(timeout: Duration) async throws {
        if state.withLock({ $0.connected }) { return }
        let timer = Task {
            try await Task.sleep(for: timeout)
            self.failConnectWaiters(Failure(description: "no MQTT connection to \(self.host):\(self.port) within \(timeout)\(self.lastErrorSuffix)"))
        }
        defer { timer.cancel() }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let ready = state.withLock { state -> Bool in
                if state.connected { return true }
                state.connectWaiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    private func failConnectWaiters(_ error: any Error) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            defer { state.connectWaiters = [] }
            return state.connectWaiters
        }
        for waiter in waiters { waiter.resume(throwing: error) }
    }

    /// Publishes at QoS 1 and answers when the broker acknowledged, or throws (not connected, refused,
    /// no acknowledgement within `timeout`).
    public func publish(topic: String, payload: [UInt8], timeout: Duration = .seconds(10)) async throws {
        guard state.withLock({ $0.connected }) else { throw Failure(description: "not connected to MQTT broker \(host):\(port)") }
        let mid = Mutex<Int32>(0)
        let timer = Task {
            try await Task.sleep(for: timeout)
            self.finishPublish(mid.withLock { $0 }, error: Failure(description: "no MQTT acknowledgement within \(timeout)"))
        }
        defer { timer.cancel() }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            // The lock is held across the call, so the acknowledgement (on the loop thread) finds the continuation.
            let rc = state.withLock { state -> Int32 in
                var id: Int32 = 0
                let rc = payload.withUnsafeBytes { bytes in
                    mosquitto_publish(handle, &id, topic, Int32(bytes.count), bytes.baseAddress, 1, false)
                }
                if rc == MOSQ_ERR_SUCCESS.rawValue {
                    state.publishes[id] = continuation
                    mid.withLock { $0 = id }
                }
                return rc
            }
            if rc != MOSQ_ERR_SUCCESS.rawValue { continuation.resume(throwing: Failure(description: "MQTT publish to \(topic): \(Self.text(rc))")) }
        }
    }

    /// Subscribes at `qos` now (if connected) and after every reconnect.
    public func subscribe(_ topic: String, qos: Int32 = 1) throws {
        let connected = state.withLock { state -> Bool in
            state.topics.append((topic, qos))
            return state.connected
        }
        if connected {
            let rc = mosquitto_subscribe(handle, nil, topic, qos)
            guard rc == MOSQ_ERR_SUCCESS.rawValue else { throw Failure(description: "MQTT subscribe to \(topic): \(Self.text(rc))") }
        }
    }

    /// Disconnects and stops the loop thread; pending publishes fail.
    public func close() {
        let already = state.withLock { state -> Bool in
            defer { state.closed = true }
            return state.closed
        }
        guard !already else { return }
        mosquitto_disconnect(handle)
        mosquitto_loop_stop(handle, false)
        failAll(Failure(description: "MQTT client closed"))
    }

    deinit {
        close()
        mosquitto_destroy(handle)
    }

    // MARK: From the loop thread

    fileprivate func connected(_ rc: Int32) {
        guard rc == 0 else { return }
        let (waiters, topics) = state.withLock { state -> ([CheckedContinuation<Void, any Error>], [(String, Int32)]) in
            state.connected = true
            state.lastError = nil
            defer { state.connectWaiters = [] }
            return (state.connectWaiters, state.topics)
        }
        for (topic, qos) in topics { mosquitto_subscribe(handle, nil, topic, qos) }
        for waiter in waiters { waiter.resume() }
    }

    fileprivate func disconnected() {
        state.withLock { $0.connected = false }
        failAll(Failure(description: "MQTT connection to \(host):\(port) lost"))
    }

    private func failAll(_ error: any Error) {
        let pending = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            defer { state.publishes = [:] }
            return Array(state.publishes.values)
        }
        for continuation in pending { continuation.resume(throwing: error) }
    }

    fileprivate func finishPublish(_ mid: Int32, error: (any Error)? = nil) {
        guard let continuation = state.withLock({ $0.publishes.removeValue(forKey: mid) }) else { return }
        if let error { continuation.resume(throwing: error) } else { continuation.resume() }
    }

    fileprivate func received(_ message: Message) { onMessage(message) }

    fileprivate func logged(_ text: String) { state.withLock { $0.lastError = text } }

    static func text(_ rc: Int32) -> String {
        String(cString: mosquitto_strerror(rc))
    }
}

// libmosquitto's callbacks: plain C functions that find the client through the handle's user data.

private func client(_ userdata: UnsafeMutableRawPointer?) -> MQTTClient? {
    userdata.map { Unmanaged<MQTTClient>.fromOpaque($0).takeUnretainedValue() }
}

private let mqttConnected: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32) -> Void = { _, userdata, rc in
    client(userdata)?.connected(rc)
}

private let mqttDisconnected: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32) -> Void = { _, userdata, _ in
    client(userdata)?.disconnected()
}

private let mqttPublished: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32) -> Void = { _, userdata, mid in
    client(userdata)?.finishPublish(mid)
}

private let mqttLog: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?) -> Void = { _, userdata, level, text in
    guard level == MOSQ_LOG_ERR, let text else { return }
    client(userdata)?.logged(String(cString: text))
}

private let mqttMessage: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafePointer<mosquitto_message>?) -> Void = { _, userdata, message in
    guard let message = message?.pointee, let topic = message.topic else { return }
    let payload = message.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(message.payloadlen))) } ?? []
    client(userdata)?.received(MQTTClient.Message(topic: String(cString: topic), payload: payload))
}
