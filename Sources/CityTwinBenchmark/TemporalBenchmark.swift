import Foundation
import NIOHTTP1

/// The history figures: sensors with a year of minute readings each, loaded through the temporal API;
/// bytes on disk per instance, `lastN=100` latency, and an hourly average over a whole year.
extension Benchmark {
    static let minutesPerYear = 525_600
    /// 2025-01-01T00:00:00Z
    static let yearStart = 1_735_689_600.0

    func measureTemporal(_ load: Load, dataDirectory: URL) async throws {
        guard historyInstances > 0 else { return }
        let sensors = max(1, historyInstances / Self.minutesPerYear)
        let perRequest = 8_000
        let requestsPerSensor = (Self.minutesPerYear + perRequest - 1) / perRequest
        let formatter = Date.ISO8601FormatStyle()
        // The history tables already hold the instances the earlier figures wrote: measure the growth.
        let bytesBefore = try historyBytes(dataDirectory: dataDirectory)
        let start = ContinuousClock.now
        for sensor in 0..<sensors {
            let id = "urn:ngsi-ld:WeatherObserved:bench-\(sensor)"
            try await load.send(.POST, "/ngsi-ld/v1/temporal/entities", #"{"id":"\#(id)","type":"WeatherObserved","temperature":[{"type":"Property","value":20,"observedAt":"2024-12-31T23:59:00Z"}]}"#)
            try await load.run(count: requestsPerSensor, concurrency: 2) { r in
                let first = r * perRequest
                let instances = (first..<min(first + perRequest, Self.minutesPerYear)).map { m -> String in
                    // A daily swing and a yearly one, to the tenth of a degree.
                    let day = sin(Double(m % 1440) / 1440 * 2 * .pi)
                    let year = sin(Double(m) / Double(Self.minutesPerYear) * 2 * .pi)
                    let value = ((22 + 4 * day + 8 * year + Double(sensor % 5)) * 10).rounded() / 10
                    let time = formatter.format(Date(timeIntervalSince1970: Self.yearStart + Double(m) * 60))
                    return #"{"value":\#(value),"observedAt":"\#(time)"}"#
                }
                return (.POST, "/ngsi-ld/v1/temporal/entities/\(id)/attrs", #"{"temperature":[\#(instances.joined(separator: ","))]}"#)
            }
        }
        let loaded = sensors * (Self.minutesPerYear + 1)
        let rate = Double(loaded) / (ContinuousClock.now - start).seconds
        say(String(format: "history: loaded %d instances (%d sensors × a year of minutes): %7.0f instances/s", loaded, sensors, rate))
        if let before = bytesBefore, let after = try historyBytes(dataDirectory: dataDirectory) {
            let bytes = after - before
            say(String(format: "history: bytes on disk per instance: %.1f (tables and indexes grew by %.0f MB)", Double(bytes) / Double(loaded), Double(bytes) / 1e6))
        }
        try settle("history")

        var random = SplitMix64(seed: 7)
        /// Milliseconds of each of `rounds` GETs of `query` on a random sensor's history, after `warmup` untimed ones.
        func timed(_ rounds: Int, warmup: Int, _ query: String) async throws -> [Double] {
            var ms: [Double] = []
            for round in 0..<(rounds + warmup) {
                let sensor = Int(random.next() % UInt64(sensors))
                let t = ContinuousClock.now
                try await load.send(.GET, "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:WeatherObserved:bench-\(sensor)?attrs=temperature&" + query)
                if round >= warmup { ms.append((ContinuousClock.now - t).seconds * 1000) }
            }
            return ms
        }
        var stolen = StolenCPU()
        let lastN = try await timed(queries, warmup: 20, "lastN=100")
        say(String(format: "history: lastN=100 of one attribute: p50 %.1f ms, p99 %.1f ms (target p99 ≤ 5 ms)", percentile(lastN, 50), percentile(lastN, 99)) + stolen.note)
        let year = "timerel=between&timeAt=2025-01-01T00:00:00Z"
        stolen = StolenCPU()
        let hourly = try await timed(min(queries, 40), warmup: 3, "options=aggregatedValues&aggrMethods=avg&aggrPeriodDuration=PT1H&\(year)&endTimeAt=2026-01-01T00:00:00Z")
        say(String(format: "history: hourly avg over a year of minutes (8,760 periods): p50 %.0f ms, max %.0f ms (target ≤ 200 ms)", percentile(hourly, 50), hourly.max() ?? 0) + stolen.note)
        stolen = StolenCPU()
        let whole = try await timed(min(queries, 40), warmup: 3, "options=aggregatedValues&aggrMethods=avg,min,max,stddev&\(year)&endTimeAt=2025-12-31T12:30:00Z")
        say(String(format: "history: avg, min, max, stddev over a year less 11.5 hours (one period): p50 %.1f ms, max %.1f ms", percentile(whole, 50), whole.max() ?? 0) + stolen.note)
    }

    /// The size of the history tables and their indexes: SQLite's `dbstat`, PostgreSQL's relation sizes.
    func historyBytes(dataDirectory: URL) throws -> Int? {
        let result = if let database {
            try command("/usr/bin/psql", [database, "-Atc", "SELECT pg_total_relation_size('history') + pg_total_relation_size('history_series') + pg_total_relation_size('history_hours')"])
        } else {
            try command("/usr/bin/sqlite3", [
                dataDirectory.appendingPathComponent("citytwin.sqlite").path,
                "SELECT SUM(pgsize) FROM dbstat WHERE name IN ('history', 'history_by_time', 'history_series', 'sqlite_autoindex_history_series_1', 'history_hours')",
            ])
        }
        return result.flatMap { Int($0.output.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }
}
