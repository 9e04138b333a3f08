import AsyncHTTPClient
import Foundation
import MQTT
import NIOCore
import NIOHTTP1
import Synchronization

/// Device intake: measurements by MQTT through Mosquitto into the twin, and a `kill -9` in the middle of a
/// stream of HTTP measurements with a subscription active.
extension Benchmark {
    /// Provisions `count` devices `prefix-0…` of type `type` under `apikey`, mapping `s` to the Integer `seq`.
    func provision(_ load: Load, apikey: String, type: String, prefix: String, count: Int) async throws {
        try await load.send(.POST, "/iot/services", #"{"services":[{"apikey":"\#(apikey)","entity_type":"\#(type)","attributes":[{"object_id":"s","name":"seq","type":"Integer"},{"object_id":"v","name":"level","type":"Number","unitCode":"2N"}]}]}"#)
        for start in stride(from: 0, to: count, by: 500) {
            let devices = (start..<min(start + 500, count)).map { #"{"device_id":"\#(prefix)-\#($0)","apikey":"\#(apikey)"}"# }.joined(separator: ",")
            try await load.send(.POST, "/iot/devices", #"{"devices":[\#(devices)]}"#)
        }
    }

    /// Measurements published by MQTT (QoS 1, 256 in flight) until the server has accepted them all
    /// (its `citytwin_mqtt_measurements_total`).
    func measureMQTT(_ load: Load, serverPID: Int32) async throws {
        guard measurements > 0, let broker = mqttBroker.flatMap(URL.init(string:)), let host = broker.host else { return }
        let devices = 1000
        try await provision(load, apikey: "mqtt-bench", type: "NoiseSensor", prefix: "mq", count: devices)
        let before = try await load.metric("citytwin_mqtt_measurements_total")
        let publisher = try MQTTClient(host: host, port: broker.port ?? 1883, clientID: "citytwin-bench-\(UUID().uuidString.prefix(8))")
        try await publisher.connect()
        defer { publisher.close() }
        let total = measurements
        let cpu = CPUUse(serverPID: serverPID)
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<256 {
                group.addTask {
                    var i = worker
                    while i < total {
                        try await publisher.publish(topic: "/mqtt-bench/mq-\(i % devices)/attrs", payload: Array(#"{"s":\#(i),"v":\#(Double(i % 900) / 10)}"#.utf8))
                        i += 256
                    }
                }
            }
            try await group.waitForAll()
        }
        let published = (ContinuousClock.now - start).seconds
        // Until all are accepted, or none more for 15 s (the broker may have dropped some).
        var accepted = 0.0
        var (last, lastChange) = (-1.0, ContinuousClock.now)
        var finished = start
        while ContinuousClock.now - lastChange < .seconds(15) {
            accepted = try await load.metric("citytwin_mqtt_measurements_total") - before
            if accepted != last { (last, lastChange, finished) = (accepted, ContinuousClock.now, ContinuousClock.now) }
            if accepted >= Double(total) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let seconds = (finished - start).seconds
        say(String(format: "MQTT measurements into the twin:  %9.0f measurements/s (target ≥ 10000; %.0f of %d accepted in %.1f s, published in %.1f s)",
                   accepted / seconds, accepted, total, seconds, published) + cpu.note(operations: accepted, target: 10000))
    }

    /// A server on the same storage takes a stream of measurements over HTTP with a subscription active, is
    /// killed (`kill -9`) part-way and restarted; the stream goes on. Every measurement answered 200 must be
    /// in the history, and its notification must arrive.
    func measureKill(arguments: [String]) async throws {
        guard killMeasurements > 0 else { return }
        let devices = 100
        let total = killMeasurements
        let received = Mutex<[Int]>([])
        try await Receiver.serve(note: { data in
            let seqs = data.compactMap { ($0["seq"] as? NSNumber)?.intValue }
            received.withLock { $0.append(contentsOf: seqs) }
        }) { url in
            var server = try await Server.start(binary: binary, arguments: arguments)
            let load = Load(client: HTTPClient.shared, base: "http://127.0.0.1:\(server.port)")
            try await provision(load, apikey: "kill-bench", type: "KillSensor", prefix: "k", count: devices)
            try await load.send(.POST, "/ngsi-ld/v1/subscriptions", """
                {"type":"Subscription","entities":[{"type":"KillSensor"}],"watchedAttributes":["seq"],"notification":{"format":"keyValues","attributes":["seq"],"endpoint":{"uri":"\(url)/kill"}}}
                """)
            let state = KillStream(base: load.base, devices: devices)
            let killAt = total * 2 / 5
            var killedAt = 0
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await state.send(until: total) }
                while state.acceptedCount < killAt { try await Task.sleep(for: .milliseconds(2)) }
                kill(server.process.processIdentifier, SIGKILL)
                server.process.waitUntilExit()
                killedAt = state.acceptedCount
                server = try await Server.start(binary: binary, arguments: arguments)
                state.base.withLock { $0 = "http://127.0.0.1:\(server.port)" }
                try await group.waitForAll()
            }
            let final = Load(client: HTTPClient.shared, base: state.base.withLock { $0 })
            let acknowledged = state.accepted.withLock { $0 }
            // Stored: every seq in the history of the devices' entities.
            var stored = Set<Int>()
            for d in 0..<devices {
                let text = try await final.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:KillSensor:k-\(d)?attrs=seq&options=temporalValues&lastN=100000")
                if let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], let seq = json["seq"] as? [String: Any],
                    let values = seq["values"] as? [[Any]] {
                    for pair in values { if let n = (pair.first as? NSNumber)?.intValue { stored.insert(n) } }
                }
            }
            let deadline = ContinuousClock.now + .seconds(180)
            while ContinuousClock.now < deadline, !acknowledged.isSubset(of: Set(received.withLock { $0 })) { try await Task.sleep(for: .milliseconds(200)) }
            let notified = received.withLock { $0 }
            say("kill -9 after \(killedAt) of \(total) measurements (HTTP, a subscription active): \(acknowledged.count) answered 200; "
                + "lost from the store = \(acknowledged.subtracting(stored).count), lost notifications = \(acknowledged.subtracting(Set(notified)).count) "
                + "(\(notified.count - Set(notified).count) delivered twice)")
            server.process.terminate()
            server.process.waitUntilExit()
            try? FileManager.default.removeItem(at: server.log)
        }
    }
}

/// The kill -9 stream: 32 senders take the next number; a measurement not answered 200 (the server was
/// killed, or is starting again) is sent again to whichever server is up.
final class KillStream: Sendable {
    let accepted = Mutex<Set<Int>>([])
    let next = Atomic<Int>(0)
    let base: Mutex<String>
    let devices: Int

    init(base: String, devices: Int) {
        self.base = Mutex(base)
        self.devices = devices
    }

    var acceptedCount: Int { accepted.withLock { $0.count } }

    func send(until limit: Int) async {
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<32 {
                group.addTask {
                    while true {
                        let seq = self.next.add(1, ordering: .relaxed).oldValue
                        if seq >= limit { return }
                        while true {
                            let target = Load(client: HTTPClient.shared, base: self.base.withLock { $0 })
                            if (try? await target.send(.POST, "/iot/json?k=kill-bench&i=k-\(seq % self.devices)", #"{"s":\#(seq)}"#)) != nil {
                                _ = self.accepted.withLock { $0.insert(seq) }
                                break
                            }
                            try? await Task.sleep(for: .milliseconds(20))
                        }
                    }
                }
            }
        }
    }
}

extension Load {
    /// GETs a body as text.
    func get(_ path: String) async throws -> String {
        var request = HTTPClientRequest(url: base + path)
        request.method = .GET
        let response = try await client.execute(request, timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 256 << 20)
        guard response.status.code < 300 else { throw Failure(description: "GET \(path) → \(response.status.code)") }
        return String(buffer: bytes)
    }

    /// The value of an unlabelled metric in `/metrics` (0 when absent).
    func metric(_ name: String) async throws -> Double {
        let text = try await get("/metrics")
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }
}
