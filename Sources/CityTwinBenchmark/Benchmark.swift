import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Measures the server over loopback HTTP: the issue's throughput, latency and memory targets, each also
/// as a ratio to the server's own no-op route rate measured in the same run.
@main
struct Benchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "citytwin-bench", abstract: "Benchmark a citytwin server over loopback HTTP.")

    @Option(help: "The citytwin binary to start.") var binary = ".build/release/citytwin"
    @Option(help: "Database URL for the server (default: SQLite in a temporary directory).") var database: String?
    @Option(help: "Entities to load.") var entities = 100_000
    @Option(help: "Entities in one batch upsert request.") var batchSize = 1000
    @Option(help: "Entities patched in the PATCH test.") var patches = 10_000
    @Option(help: "Concurrent connections for PATCH and retrieve.") var connections = 32
    @Option(help: "Queries for the query-latency figure.") var queries = 500
    @Option(help: "Point entities for the geo-query figures (0 skips them).") var geoEntities = 1_000_000
    @Option(help: "History instances for the temporal figures, as sensors with a year of minute readings each (0 skips them).") var historyInstances = 10_000_000
    @Option(help: "Seconds of load for each rate figure (no-op, PATCH, retrieve), driven by wrk.") var seconds = 10
    @Option(help: "Seconds of paced updates (1000/s) for the notification-latency figure (0 skips it).") var notificationSeconds = 10
    @Option(help: "mqtt://host:port of a broker for the server's MQTT intake (none skips the MQTT figure).") var mqttBroker: String?
    @Option(help: "Measurements published by MQTT for the intake figure (0 skips it).") var measurements = 100_000
    @Option(help: "Measurements in the kill -9 stream (0 skips it).") var killMeasurements = 100_000

    func run() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-bench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--allow-anonymous-writes", "--max-limit", "1000"]
        arguments += database.map { ["--database", $0] } ?? ["--data-dir", dir.path]
        let server = try await Server.start(binary: binary, arguments: arguments + (mqttBroker.map { ["--mqtt-broker", $0] } ?? []))
        defer {
            server.process.terminate()
            try? FileManager.default.removeItem(at: server.log)
        }
        let base = "http://127.0.0.1:\(server.port)"
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let load = Load(client: client, base: base)
        do {
            try await measure(load, server: server, dataDirectory: dir)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        // The kill -9 stream runs on the same storage, with the first server stopped.
        server.process.terminate()
        server.process.waitUntilExit()
        try await measureKill(arguments: arguments + ["--temporal-instance-limit", "1000000"])
    }

    func measure(_ load: Load, server: Server, dataDirectory: URL) async throws {

        say("backend: \(database.map { _ in "postgresql" } ?? "sqlite"), machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ISO8601DateFormatter().string(from: Date()))")

        let wrk = Wrk(base: load.base, connections: connections, seconds: seconds)
        var cpu = CPUUse(serverPID: server.process.processIdentifier)
        let noop = try wrk.rate("/health", script: nil)
        say(String(format: "no-op route (/health):            %9.0f req/s", noop) + cpu.note(operations: noop * Double(seconds), target: noop))

        let batches = entities / batchSize
        cpu = CPUUse(serverPID: server.process.processIdentifier)
        let upsertStart = ContinuousClock.now
        try await load.run(count: batches, concurrency: 4) { b in
            let body = "[" + (0..<batchSize).map { Self.entity(b * batchSize + $0) }.joined(separator: ",") + "]"
            return (.POST, "/ngsi-ld/v1/entityOperations/upsert", body)
        }
        let upsert = Double(batches * batchSize) / (ContinuousClock.now - upsertStart).seconds
        say(String(format: "batch upsert, 5 attributes:       %9.0f entities/s  (target ≥ 20000; %.2f× no-op)", upsert, upsert / noop) + cpu.note(operations: Double(batches * batchSize), target: 20000))

        cpu = CPUUse(serverPID: server.process.processIdentifier)
        let patch = try wrk.rate("/", script: """
            n = 0
            request = function()
              n = n + 1
              local path = "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualitySensor:" .. math.random(0, \(min(patches, entities) - 1)) .. "/attrs/temperature"
              return wrk.format("PATCH", path, {["Content-Type"] = "application/json"}, '{"value": ' .. (n % 400) / 10 .. '}')
            end
            """)
        say(String(format: "single-attribute PATCH:           %9.0f updates/s   (target ≥ 5000; %.2f× no-op)", patch, patch / noop) + cpu.note(operations: patch * Double(seconds), target: 5000))

        cpu = CPUUse(serverPID: server.process.processIdentifier)
        let retrieve = try wrk.rate("/", script: """
            request = function()
              return wrk.format("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualitySensor:" .. math.random(0, \(entities - 1)))
            end
            """)
        say(String(format: "retrieve by id:                   %9.0f req/s       (target ≥ 10000; %.2f× no-op)", retrieve, retrieve / noop) + cpu.note(operations: retrieve * Double(seconds), target: 10000))

        var latencies: [Double] = []
        let stolen = StolenCPU()
        for i in 0..<queries {
            let low = Double(i % 30)
            let start = ContinuousClock.now
            try await load.send(.GET, "/ngsi-ld/v1/entities?type=AirQualitySensor&q=temperature%3E\(low);temperature%3C\(low + 0.5);district==%22福田区%22&limit=20")
            latencies.append((ContinuousClock.now - start).seconds * 1000)
        }
        latencies.sort()
        say(String(format: "query type + q over %d:       p50 %.1f ms, p99 %.1f ms (target p99 ≤ 20 ms)", entities, latencies[latencies.count / 2], latencies[latencies.count * 99 / 100]) + stolen.note)

        let (resident, anonymous) = server.memoryKB()
        say(String(format: "server memory: %.0f MB of its own (RssAnon; target ≤ 300 MB), %.0f MB resident with the mapped database file (VmRSS)", Double(anonymous) / 1024, Double(resident) / 1024))

        try await measureNotifications(load)
        try await measureMQTT(load, serverPID: server.process.processIdentifier)
        try await measureGeo(load)
        try await measureTemporal(load, dataDirectory: dataDirectory)
    }

    static let districts = ["福田区", "南山区", "罗湖区", "宝安区", "龙岗区"]

    static func entity(_ n: Int) -> String {
        let lon = 113.8 + Double(n % 1000) / 2000
        let lat = 22.45 + Double(n / 1000 % 100) / 400
        return #"{"id":"urn:ngsi-ld:AirQualitySensor:\#(n)","type":"AirQualitySensor","temperature":{"type":"Property","value":\#(Double(n % 400) / 10),"unitCode":"CEL","observedAt":"2026-11-25T02:00:00Z"},"pm25":{"type":"Property","value":\#(n % 150)},"district":{"type":"Property","value":"\#(districts[n % 5])"},"refDevice":{"type":"Relationship","object":"urn:ngsi-ld:Device:\#(n)"},"location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[\#(lon),\#(lat)]}}}"#
    }
}

struct Load {
    let client: HTTPClient
    let base: String

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// GETs `path` and returns the whole body of its 200 answer.
    func fetch(_ path: String) async throws -> ByteBuffer {
        var request = HTTPClientRequest(url: base + path)
        request.method = .GET
        let response = try await client.execute(request, timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        guard response.status.code == 200 else {
            throw Failure(description: "GET \(path) → \(response.status.code): \(String(buffer: bytes).prefix(300))")
        }
        return bytes
    }

    /// The length of a JSON array answered by `fetch`.
    static func count(_ bytes: ByteBuffer, of path: String) throws -> Int {
        guard let array = try JSONSerialization.jsonObject(with: Data(String(buffer: bytes).utf8)) as? [Any] else {
            throw Failure(description: "GET \(path): not a JSON array: \(String(buffer: bytes).prefix(300))")
        }
        return array.count
    }

    func send(_ method: HTTPMethod, _ path: String, _ body: String? = nil) async throws {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        guard response.status.code < 300 else {
            throw Failure(description: "\(method) \(path) → \(response.status.code): \(String(buffer: bytes).prefix(300))")
        }
    }

    func run(count: Int, concurrency: Int, _ make: @escaping @Sendable (Int) -> (HTTPMethod, String, String?)) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var i = worker
                    while i < count {
                        let (method, path, body) = make(i)
                        try await send(method, path, body)
                        i += concurrency
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

/// Rates are driven by wrk (a small C load generator, Debian's `wrk`), so the load generator takes as
/// little as possible of the two cores the server runs on. A request script is Lua.
struct Wrk {
    let base: String
    let connections: Int
    let seconds: Int

    /// Seeds each wrk thread's `math.random` differently: unseeded, both threads draw the same ids in step,
    /// so two requests for one entity keep arriving together (and are merged into one write).
    static let seeding = """
        local threads = 0
        function setup(thread) threads = threads + 1; thread:set("seed", threads) end
        function init(args) math.randomseed(seed * 7919) end

        """

    func rate(_ path: String, script: String?) throws -> Double {
        var arguments = ["-t2", "-c\(connections)", "-d\(seconds)s"]
        var scriptURL: URL?
        if let script = script.map({ Self.seeding + $0 }) {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-bench-\(UUID().uuidString).lua")
            try script.write(to: url, atomically: true, encoding: .utf8)
            arguments += ["-s", url.path]
            scriptURL = url
        }
        defer { if let scriptURL { try? FileManager.default.removeItem(at: scriptURL) } }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
        process.arguments = arguments + [base + path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if output.contains("Non-2xx or 3xx responses") || output.contains("Socket errors") {
            throw Load.Failure(description: "wrk saw failed requests:\n\(output)")
        }
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("Requests/sec:") }),
            let rate = Double(line.split(separator: " ").last ?? "")
        else { throw Load.Failure(description: "wrk printed no rate:\n\(output)") }
        return rate
    }
}

struct Server {
    let process: Process
    let port: Int
    let log: URL

    static func start(binary: String, arguments: [String]) async throws -> Server {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        // The server logs to a file that is polled for the port it bound.
        let logURL = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-bench-server-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logURL)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        var text = ""
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            text = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
            if let range = text.range(of: "listening on 127.0.0.1:"), let port = Int(text[range.upperBound...].prefix { $0.isNumber }) {
                return Server(process: process, port: port, log: logURL)
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Load.Failure(description: "the server did not start: \(text)")
    }

    /// VmRSS (all resident pages, also those of memory-mapped files) and RssAnon (the process's own memory).
    func memoryKB() -> (resident: Int, anonymous: Int) {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return (field("VmRSS"), field("RssAnon"))
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Prints a line at once, also when the output is a file or a pipe.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
