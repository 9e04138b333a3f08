import CityKit
import Foundation
import SQLKit
import Storage

/// Hourly rollups of the history: `history_hours` holds, for each series and UTC hour of observedAt, the
/// instances' count, numeric count, sum, sum of squares, min and max. Every write of instances adds to
/// them (`History.write` on SQLite, a statement trigger on PostgreSQL: `twin-0008-history-hours`);
/// deleting or changing instances recomputes the hours they were in. An aggregation over the whole range
/// or in periods of whole hours from a whole hour reads one row an hour, and only the (at most two) hours
/// that its time range cuts from the instances.
enum HistoryRollup {
    static let hour: Int64 = 3_600_000_000

    /// SQL for the start of the UTC hour holding `micros` (a column or expression), rounded down also before 1970.
    static func hourStart(_ micros: String) -> String { "(\(micros) - ((\(micros) % 3600000000) + 3600000000) % 3600000000)" }

    static func hourStart(_ micros: Int64) -> Int64 { micros - ((micros % hour) + hour) % hour }

    /// The columns of `history_hours` from the instances `h` (grouped), under their names.
    static let fromInstances = """
        COUNT(*) AS n, COUNT(h.num) AS num_n, CAST(COALESCE(SUM(h.num), 0) AS DOUBLE PRECISION) AS sum,
        CAST(COALESCE(SUM(h.num * h.num), 0) AS DOUBLE PRECISION) AS sumsq, MIN(h.num) AS min, MAX(h.num) AS max
        """

    /// One series' hour.
    struct Bucket: Hashable, Sendable {
        let series: Int64
        let hour: Int64
    }

    /// Totals of some instances, added up hour by hour.
    struct Totals: Sendable {
        var count: Int64 = 0
        var numeric: Int64 = 0
        var sum = 0.0
        var sumsq = 0.0
        var min: Double?
        var max: Double?

        mutating func add(_ other: Totals) {
            count += other.count
            numeric += other.numeric
            sum += other.sum
            sumsq += other.sumsq
            if let m = other.min, min.map({ m < $0 }) ?? true { min = m }
            if let m = other.max, max.map({ m > $0 }) ?? true { max = m }
        }

        /// The values as `SQLHistoryStore.aggregateColumns` indexes them (all but the distinct count).
        var aggregates: [Int: JSON] {
            let some = numeric > 0
            return [
                0: .integer(count), 1: .integer(numeric), 3: some ? .double(sum) : .null, 4: some ? .double(sum / Double(numeric)) : .null,
                5: min.map(JSON.double) ?? .null, 6: max.map(JSON.double) ?? .null, 7: some ? .double(sumsq) : .null,
            ]
        }
    }

    /// Whether the rollups answer an aggregation: on observedAt, without a distinct count (which hours
    /// cannot add up), over the whole range or in periods of whole hours starting on a whole hour.
    static func answers(_ query: TemporalQuery, _ aggregation: AggregationQuery, origin: Int64) -> Bool {
        guard query.timeProperty == .observedAt, !aggregation.methods.contains(.distinctCount) else { return false }
        guard let period = aggregation.period else { return true }
        return period % hour == 0 && hourStart(origin) == origin
    }

    /// The whole hours `[from, to)` within the query's time range, and the hours it begins or ends inside.
    static func span(_ query: TemporalQuery) -> (from: Int64, to: Int64, cut: [Int64]) {
        var lower: (at: Int64, inclusive: Bool)?
        var upper: Int64?
        switch query.timerel {
        case nil: break
        case .before(let t): upper = History.micros(t)
        case .after(let t): lower = (History.micros(t), false)
        case .between(let a, let b): (lower, upper) = ((History.micros(a), true), History.micros(b))
        }
        // Whole hours [from, to); cut hours at the edges.
        var from = Int64.min, to = Int64.max
        var cut: Set<Int64> = []
        if let lower {
            from = hourStart(lower.at)
            if !lower.inclusive || from != lower.at {
                cut.insert(from)
                from += hour
            }
        }
        if let upper {
            to = hourStart(upper)
            if to != upper { cut.insert(to) }
        }
        return (from, to, cut.sorted())
    }

    /// The hours of series `id` within the query's time range that hold instances, with their totals:
    /// whole hours from `history_hours`, the hours the range begins or ends inside from the instances.
    static func hours(_ id: Int64, query: TemporalQuery, kind: DialectKind, on db: any SQLDatabase) async throws -> [(hour: Int64, totals: Totals)] {
        let (from, to, cut) = span(query)
        var parts: [SQLQueryString] = []
        if from < to {
            parts.append("SELECT hour, n, num_n, sum, sumsq, min, max FROM history_hours WHERE series = \(bind: id) AND hour >= \(bind: from) AND hour < \(bind: to)")
        }
        let condition = SQLHistoryStore.timeFilter(query).condition
        for start in cut {
            parts.append("""
                SELECT CAST(\(bind: start) AS BIGINT) AS hour, \(unsafeRaw: fromInstances)
                FROM history h WHERE h.series = \(bind: id) AND h.observed >= \(bind: start) AND h.observed < \(bind: start + hour)
                """ + condition)
        }
        guard !parts.isEmpty else { return [] }
        // All hours come back as one JSON value: decoding thousands of rows column by column costs more than reading them.
        let union = parts.joined(separator: " UNION ALL ")
        let sql: SQLQueryString = kind == .postgres
            ? "SELECT CAST(COALESCE(json_agg(json_build_array(u.hour, u.n, u.num_n, u.sum, u.sumsq, u.min, u.max)), '[]') AS text) AS hours FROM (" + union + ") AS u"
            : "SELECT json_group_array(json_array(u.hour, u.n, u.num_n, u.sum, u.sumsq, u.min, u.max)) AS hours FROM (" + union + ") AS u"
        guard let text = try await db.raw(sql).first()?.decode(column: "hours", as: String.self) else { return [] }
        var out: [(hour: Int64, totals: Totals)] = []
        for item in try JSONCoding.parse(text).arrayValue ?? [] {
            guard let r = item.arrayValue, r.count == 7, case .integer(let start) = r[0], case .integer(let count) = r[1], count > 0, case .integer(let numeric) = r[2] else { continue }
            out.append((start, Totals(count: count, numeric: numeric, sum: r[3].numberValue ?? 0, sumsq: r[4].numberValue ?? 0, min: r[5].numberValue, max: r[6].numberValue)))
        }
        return out.sorted { $0.hour < $1.hour }
    }

    /// Each series' totals over the whole time range, with its first and last instance in it (series
    /// without instances in the range are left out).
    static func totals(of ids: [Int64], query: TemporalQuery, on db: any SQLDatabase) async throws -> [Int64: (first: Int64, last: Int64, totals: Totals)] {
        let (from, to, cut) = span(query)
        let condition = SQLHistoryStore.timeFilter(query).condition
        let sums = "CAST(SUM(n) AS BIGINT) AS n, CAST(SUM(num_n) AS BIGINT) AS num_n, CAST(SUM(sum) AS DOUBLE PRECISION) AS sum, CAST(SUM(sumsq) AS DOUBLE PRECISION) AS sumsq, MIN(min) AS min, MAX(max) AS max"
        var parts: [SQLQueryString] = []
        if from < to {
            parts.append("SELECT series, \(unsafeRaw: sums) FROM history_hours WHERE series IN (\(binds: ids)) AND hour >= \(bind: from) AND hour < \(bind: to) GROUP BY series")
        }
        for start in cut {
            parts.append("""
                SELECT h.series, \(unsafeRaw: fromInstances)
                FROM history h WHERE h.series IN (\(binds: ids)) AND h.observed >= \(bind: start) AND h.observed < \(bind: start + hour)
                """ + condition + " GROUP BY h.series")
        }
        var totals: [Int64: Totals] = [:]
        for part in parts {
            for row in try await db.raw(part).all() {
                let t = Totals(
                    count: try row.decode(column: "n", as: Int64.self), numeric: try row.decode(column: "num_n", as: Int64.self),
                    sum: try row.decode(column: "sum", as: Double.self), sumsq: try row.decode(column: "sumsq", as: Double.self),
                    min: try row.decode(column: "min", as: Double?.self), max: try row.decode(column: "max", as: Double?.self))
                totals[try row.decode(column: "series", as: Int64.self), default: Totals()].add(t)
            }
        }
        guard totals.values.contains(where: { $0.count > 0 }) else { return [:] }
        // First and last by two index seeks a series (one MIN and one MAX each, so that SQLite seeks too).
        let bounds = try await db.raw("""
            SELECT s.id, (SELECT MIN(h.observed) FROM history h WHERE h.series = s.id\(condition)) AS first,
                   (SELECT MAX(h.observed) FROM history h WHERE h.series = s.id\(condition)) AS last
            FROM history_series s WHERE s.id IN (\(binds: Array(totals.keys)))
            """).all()
        var out: [Int64: (first: Int64, last: Int64, totals: Totals)] = [:]
        for row in bounds {
            let id = try row.decode(column: "id", as: Int64.self)
            guard let t = totals[id], t.count > 0, let first = try row.decode(column: "first", as: Int64?.self), let last = try row.decode(column: "last", as: Int64?.self) else { continue }
            out[id] = (first, last, t)
        }
        return out
    }

    /// Recomputes the rollups of `buckets` from the instances they hold now (none left: no row).
    static func recompute(_ buckets: Set<Bucket>, kind: DialectKind, on db: any SQLDatabase) async throws {
        for chunk in Array(buckets).chunked(500) {
            let json = JSONCoding.string(.array(chunk.map { .array([.integer($0.series), .integer($0.hour)]) }))
            let list: SQLQueryString = kind == .postgres
                ? "SELECT (j->>0)::bigint AS series, (j->>1)::bigint AS hour FROM jsonb_array_elements(CAST(\(bind: json) AS jsonb)) AS j"
                : "SELECT json_extract(value, '$[0]') AS series, json_extract(value, '$[1]') AS hour FROM json_each(\(bind: json))"
            try await db.raw("DELETE FROM history_hours WHERE (series, hour) IN (" + list + ")").run()
            try await db.raw("""
                INSERT INTO history_hours (series, hour, n, num_n, sum, sumsq, min, max)
                SELECT b.series, b.hour, \(unsafeRaw: fromInstances)
                FROM (
                """ + list + """
                ) AS b JOIN history h ON h.series = b.series AND h.observed >= b.hour AND h.observed < b.hour + \(bind: hour)
                GROUP BY b.series, b.hour
                """).run()
        }
    }

    /// Deletes the rollups of the series that `condition` (on `history_series`) chooses.
    static func delete(seriesWhere condition: SQLQueryString, on db: any SQLDatabase) async throws {
        try await db.raw("DELETE FROM history_hours WHERE series IN (SELECT id FROM history_series WHERE " + condition + ")").run()
    }
}
