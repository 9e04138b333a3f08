import AsyncHTTPClient
import CityKit
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOFoundationCompat
import Storage
import Synchronization
import Testing

/// The real binary on a real socket, driven by a real HTTP client; on SQLite and on PostgreSQL.
@Suite(.serialized) struct EndToEndTests {
    struct Reply {
        let status: Int
        let headers: [(String, String)]
        let body: JSON?
        var text = ""
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    func send(_ method: HTTPMethod, _ url: String, _ body: String? = nil, contentType: String = "application/json", timeout: Int64 = 30) async throws -> Reply {
        try await EndToEndTests.request(method, url, body, contentType: contentType, timeout: timeout)
    }

    static func request(_ method: HTTPMethod, _ url: String, _ body: String? = nil, contentType: String = "application/json", timeout: Int64 = 30) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        let json = bytes.readableBytes > 0 ? try? JSONCoding.parse(Data(buffer: bytes)) : nil
        return Reply(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: json, text: String(buffer: bytes))
    }

    func storageArguments(_ kind: DialectKind, dataDir: URL) async throws -> [String] {
        switch kind {
        case .sqlite: return ["--data-dir", dataDir.path]
        case .postgres: return ["--database", try await TestDatabases.makePostgresDatabase()]
        }
    }

    @Test(arguments: TestDatabases.kinds)
    func servesPersistsAndShutsDownGracefully(_ kind: DialectKind) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-e2e-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let storage = try await storageArguments(kind, dataDir: dir)
        let server = try await ServerProcess(arguments: storage + ["--allow-anonymous-writes"])
        let base = "http://127.0.0.1:\(server.port)"

        #expect(try await send(.GET, base + "/health").status == 200)
        let manhole = #"{"id":"urn:ngsi-ld:ManholeCover:ft-0042","type":"ManholeCover","status":{"type":"Property","value":"displaced"},"name":{"type":"LanguageProperty","languageMap":{"zh":"福华路井盖","en":"Fuhua Rd cover"}},"location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[114.06,22.53]}}}"#
        #expect(try await send(.POST, base + "/ngsi-ld/v1/entities", manhole).status == 201)
        // 100 concurrent single-entity creates go through group commit and are all there.
        try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<100 {
                group.addTask {
                    try await send(.POST, base + "/ngsi-ld/v1/entities", #"{"id":"urn:ngsi-ld:Streetlight:\#(i)","type":"Streetlight","power":{"type":"Property","value":\#(i)}}"#).status
                }
            }
            for try await status in group { #expect(status == 201) }
        }
        let geo = try await send(.GET, base + "/ngsi-ld/v1/entities?type=ManholeCover&lang=zh&options=keyValues")
        #expect(geo.body?.arrayValue?.first?["name"] == "福华路井盖")
        let counted = try await send(.GET, base + "/ngsi-ld/v1/entities?type=Streetlight&q=power%3E=50&limit=0&count=true")
        #expect(counted.header("NGSILD-Results-Count") == "50")
        let tooBig = try await send(.POST, base + "/ngsi-ld/v1/entities", "{\"id\":\"urn:x:1\",\"type\":\"T\",\"p\":\"" + String(repeating: "x", count: 2 << 20) + "\"}")
        #expect(tooBig.status == 413)
        #expect(tooBig.body?["type"]?.stringValue?.hasPrefix("https://uri.etsi.org/ngsi-ld/errors/") == true)

        #expect(try await server.stop(signal: SIGTERM) == 0)

        // Restarted on the same storage, everything accepted is still there.
        let again = try await ServerProcess(arguments: storage)
        let all = try await send(.GET, "http://127.0.0.1:\(again.port)/ngsi-ld/v1/entities?type=Streetlight,ManholeCover&limit=0&count=true")
        #expect(all.header("NGSILD-Results-Count") == "101")
        _ = try await again.stop()
    }

    /// A fast device's latest `dateLastValueReported`, left waiting for its interval, is written when the
    /// interval is over, and on SIGTERM before the server exits.
    @Test func devicesLastReportsAreWrittenWhenDueAndAtShutdown() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-reports-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let device = "urn:ngsi-ld:Device:ft-007"
        func reported(_ base: String) async throws -> JSON? {
            try await send(.GET, base + "/ngsi-ld/v1/entities/\(device)?options=keyValues").body?["dateLastValueReported"]?["@value"]
        }
        func measure(_ base: String, at time: String) async throws {
            #expect(try await send(.POST, base + "/iot/json?k=air-key&i=ft-007", #"{"p": 1, "TimeInstant": "\#(time)"}"#).status == 200)
        }
        for (interval, waitsForShutdown) in [("1500", false), ("600000", true)] {
            let server = try await ServerProcess(arguments: ["--data-dir", dir.path, "--allow-anonymous-writes", "--device-report-interval", interval])
            let base = "http://127.0.0.1:\(server.port)"
            if !waitsForShutdown {
                #expect(try await send(.POST, base + "/iot/devices", #"{"devices":[{"device_id":"ft-007","apikey":"air-key","entity_type":"AirQualitySensor"}]}"#).status == 201)
            }
            try await measure(base, at: "2026-11-25T02:00:00Z")
            try await measure(base, at: "2026-11-25T02:00:01Z")
            #expect(try await reported(base) == "2026-11-25T02:00:00.000Z", "the second report waits for its interval")
            if waitsForShutdown {
                #expect(try await server.stop(signal: SIGTERM) == 0)
                let again = try await ServerProcess(arguments: ["--data-dir", dir.path])
                #expect(try await reported("http://127.0.0.1:\(again.port)") == "2026-11-25T02:00:01.000Z")
                _ = try await again.stop()
            } else {
                let deadline = ContinuousClock.now + .seconds(10)
                while try await reported(base) != "2026-11-25T02:00:01.000Z", ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
                #expect(try await reported(base) == "2026-11-25T02:00:01.000Z")
                _ = try await server.stop()
            }
        }
    }

    @Test func acceptedWritesSurviveKill9() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-kill-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try await ServerProcess(arguments: ["--data-dir", dir.path, "--allow-anonymous-writes"])
        let base = "http://127.0.0.1:\(server.port)"
        let accepted = Counter()
        let stop = Counter()
        let finished = Counter()
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for i in 0..<200 where stop.value == 0 {
                        let reply = try? await send(.POST, base + "/ngsi-ld/v1/entities", #"{"id":"urn:ngsi-ld:Reading:\#(worker)-\#(i)","type":"Reading","v":{"type":"Property","value":\#(i)}}"#, timeout: 5)
                        if reply?.status == 201 { accepted.increment() }
                    }
                    finished.increment()
                }
            }
            // Kill the server in the middle of the stream.
            while accepted.value < 300 && finished.value < 8 { try? await Task.sleep(for: .milliseconds(5)) }
            _ = try? await server.stop(signal: SIGKILL)
            stop.increment()
            await group.waitForAll()
        }
        let again = try await ServerProcess(arguments: ["--data-dir", dir.path])
        let stored = try await send(.GET, "http://127.0.0.1:\(again.port)/ngsi-ld/v1/entities?type=Reading&limit=0&count=true")
        let count = Int(stored.header("NGSILD-Results-Count") ?? "") ?? -1
        let acknowledged = accepted.value
        #expect(acknowledged > 0)
        #expect(count >= acknowledged, "every write answered 201 before the kill is stored")
        _ = try await again.stop()
    }

    /// A subscriber is told of every write the server accepted, also when the server was killed (`kill -9`)
    /// between accepting a write and sending its notification.
    @Test func notificationsOfAcceptedWritesSurviveKill9() async throws {
        let receiver = NotificationReceiver()
        try await receiver.serve { url in
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-kill-notify-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: dir) }
            let server = try await ServerProcess(arguments: ["--data-dir", dir.path, "--allow-anonymous-writes"])
            let base = "http://127.0.0.1:\(server.port)/ngsi-ld/v1"
            let subscription = #"{"type":"Subscription","entities":[{"type":"Reading"}],"notificationTrigger":["entityCreated"],"notification":{"format":"keyValues","endpoint":{"uri":"\#(url)/readings"}}}"#
            let created = try await EndToEndTests.request(.POST, base + "/subscriptions", subscription)
            #expect(created.status == 201)
            let accepted = Accepted()
            let stop = Counter()
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for i in 0..<300 where stop.value == 0 {
                            let id = "urn:ngsi-ld:Reading:\(worker)-\(i)"
                            let reply = try? await EndToEndTests.request(.POST, base + "/entities", #"{"id":"\#(id)","type":"Reading","v":{"type":"Property","value":\#(i)}}"#, timeout: 5)
                            if reply?.status == 201 { accepted.insert(id) }
                        }
                    }
                }
                while accepted.ids.count < 400 { try? await Task.sleep(for: .milliseconds(5)) }
                _ = try? await server.stop(signal: SIGKILL)
                stop.increment()
                await group.waitForAll()
            }
            let again = try await ServerProcess(arguments: ["--data-dir", dir.path, "--allow-anonymous-writes"])
            let acknowledged = accepted.ids
            @Sendable func notified() -> Set<String> {
                Set(receiver.received.flatMap { $0.body["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [] })
            }
            let allArrived = try await NotificationReceiver.eventually(.seconds(30)) { acknowledged.isSubset(of: notified()) }
            #expect(allArrived, "lost: \(acknowledged.subtracting(notified()).count) of \(acknowledged.count)")
            // The restarted server notifies of its own writes too, and counts what it sent in /metrics.
            let after = try await EndToEndTests.request(.POST, "http://127.0.0.1:\(again.port)/ngsi-ld/v1/entities", #"{"id":"urn:ngsi-ld:Reading:after","type":"Reading","v":{"type":"Property","value":1}}"#)
            #expect(after.status == 201)
            let afterArrived = try await NotificationReceiver.eventually(.seconds(10)) { notified().contains("urn:ngsi-ld:Reading:after") }
            #expect(afterArrived)
            try await Task.sleep(for: .milliseconds(100))
            let metrics = try await EndToEndTests.request(.GET, "http://127.0.0.1:\(again.port)/metrics")
            let sentLine = metrics.text.split(separator: "\n").first { $0.hasPrefix("citytwin_notifications_sent_total ") }
            #expect((sentLine?.split(separator: " ").last.flatMap { Double($0) } ?? 0) > 0)
            _ = try await again.stop()
        }
    }

    /// Two copies on one PostgreSQL: a subscription made on one fires for writes on the other, and each
    /// notification is delivered once between them, also those that failed first and waited in the outbox
    /// for whichever copy claimed them.
    @Test func twoCopiesShareSubscriptionsAndDeliverOnce() async throws {
        guard TestDatabases.kinds.contains(.postgres) else { return }
        // The receiver refuses its first 8 requests: those notifications go back to the outbox and are
        // claimed again by either copy.
        let receiver = NotificationReceiver { n in (.zero, n <= 8 ? .serviceUnavailable : .ok) }
        try await receiver.serve { url in
            let database = try await TestDatabases.makePostgresDatabase()
            let a = try await ServerProcess(arguments: ["--database", database, "--allow-anonymous-writes"])
            let b = try await ServerProcess(arguments: ["--database", database, "--allow-anonymous-writes"])
            let (baseA, baseB) = ("http://127.0.0.1:\(a.port)/ngsi-ld/v1", "http://127.0.0.1:\(b.port)/ngsi-ld/v1")
            let subscription = #"{"type":"Subscription","entities":[{"type":"ParkingSpot"}],"notification":{"format":"keyValues","endpoint":{"uri":"\#(url)/parking"}}}"#
            let created = try await EndToEndTests.request(.POST, baseA + "/subscriptions", subscription)
            #expect(created.status == 201)
            // At once, on the other copy.
            let first = try await EndToEndTests.request(.POST, baseB + "/entities", #"{"id":"urn:ngsi-ld:ParkingSpot:0","type":"ParkingSpot","free":{"type":"Property","value":true}}"#)
            #expect(first.status == 201)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 1...100 {
                    group.addTask {
                        let base = n % 2 == 0 ? baseA : baseB
                        let reply = try await EndToEndTests.request(.POST, base + "/entities", #"{"id":"urn:ngsi-ld:ParkingSpot:\#(n)","type":"ParkingSpot","free":{"type":"Property","value":true}}"#)
                        #expect(reply.status == 201)
                    }
                }
                try await group.waitForAll()
            }
            @Sendable func notified() -> [String] {
                receiver.received.flatMap { $0.body["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [] }
            }
            let all = try await NotificationReceiver.eventually(.seconds(40)) { Set(notified()).count == 101 }
            #expect(all, "\(Set(notified()).count) of 101 spots notified")
            try await Task.sleep(for: .seconds(1))
            #expect(notified().count == 101, "each notification once: \(notified().count) deliveries")
            #expect(receiver.notificationIDs.count == receiver.received.count)
            let stats = try await EndToEndTests.request(.GET, baseB + "/subscriptions")
            #expect(stats.body?.arrayValue?.first?["notification"]?["timesFailed"]?.numberValue ?? 0 >= 8)
            _ = try await a.stop()
            _ = try await b.stop()
        }
    }
}

/// A count shared by concurrent tasks.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }

}

/// Ids of the writes a server answered 2xx.
final class Accepted: Sendable {
    private let box = Mutex<Set<String>>([])
    func insert(_ id: String) { _ = box.withLock { $0.insert(id) } }
    var ids: Set<String> { box.withLock { $0 } }
}

/// `citytwin serve --config FILE`: settings from the file, flags and environment before it.
@Suite(.serialized) struct ConfigurationFileEndToEndTests {
    @Test func serverTakesItsSettingsFromTheFile() async throws {
        // given a file that allows anonymous writes and names the data directory
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("citytwin.toml")
        try "data-dir = \"\(dir.appendingPathComponent("data").path)\"\nallow-anonymous-writes = true\nbody-limit = 2000\n".write(to: config, atomically: true, encoding: .utf8)
        // when the server starts with it
        let server = try await ServerProcess(arguments: ["--config", config.path])
        let base = "http://127.0.0.1:\(server.port)"
        // then a write without credentials is taken, into the file's data directory, and the body limit holds
        let created = try await EndToEndTests.request(.POST, base + "/ngsi-ld/v1/entities", #"{"id":"urn:ngsi-ld:Streetlight:1","type":"Streetlight"}"#)
        #expect(created.status == 201)
        let large = try await EndToEndTests.request(.POST, base + "/ngsi-ld/v1/entities", #"{"id":"urn:ngsi-ld:Streetlight:2","type":"Streetlight","n":{"value":""# + String(repeating: "x", count: 3000) + "\"}}")
        #expect(large.status == 413)
        #expect(try await server.stop() == 0)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("data/citytwin.sqlite").path))
    }

    @Test func flagsComeBeforeTheFile() async throws {
        // given a file that allows anonymous writes, and a flag that names another data directory
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("citytwin.toml")
        try "data-dir = \"\(dir.appendingPathComponent("from-file").path)\"\n".write(to: config, atomically: true, encoding: .utf8)
        // when the server starts with both
        let server = try await ServerProcess(arguments: ["--config", config.path, "--data-dir", dir.appendingPathComponent("from-flag").path])
        #expect(try await server.stop() == 0)
        // then the flag's directory is used, and anonymous writes stay off (the default)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("from-flag/citytwin.sqlite").path))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("from-file").path))
    }

    @Test func unknownKeyStopsTheServerWithItsName() async throws {
        // given a file with a misspelt key
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("citytwin.toml")
        try "data-dir = \"\(dir.path)\"\nallow-anonymous-write = true\n".write(to: config, atomically: true, encoding: .utf8)
        // when the server is started with it, then it does not start and says which key
        do {
            let server = try await ServerProcess(arguments: ["--config", config.path])
            _ = try await server.stop()
            Issue.record("the server started with an unknown key")
        } catch let error as ServerProcess.StartError {
            #expect(error.description.contains("unknown key allow-anonymous-write"))
        }
    }
}
