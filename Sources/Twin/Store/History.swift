import CityKit
import Foundation
import SQLKit
import Storage

/// How attribute instances are kept in `history_series` and `history`, and how they are written.
enum History {
    /// One attribute instance as a history row will hold it.
    struct Row: Sendable {
        let entityID: String
        let name: String
        /// "" for the default instance.
        let datasetID: String
        /// Microseconds since 1970: the instance's observedAt, or when it was recorded if it has none.
        let observed: Int64
        let recorded: Int64
        let num: Double?
        let body: String?
    }

    static func micros(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }
    static func date(_ micros: Int64) -> Date { Date(timeIntervalSince1970: Double(micros) / 1_000_000) }

    /// The instances of `after` that an update wrote: new ones, and those whose `modifiedAt` moved.
    static func changes(before: Entity?, after: Entity, now: Date) -> [Row] {
        var rows: [Row] = []
        for (name, instances) in after.attributes {
            for instance in instances {
                let datasetID = instance["datasetId"]
                let previous = before?.attributes[name]?.first { $0["datasetId"] == datasetID }
                if previous == instance { continue }
                rows.append(row(entityID: after.id, name: name, instance: instance, recorded: now))
            }
        }
        return rows
    }

    static func row(entityID: String, name: String, instance: [String: JSON], recorded: Date) -> Row {
        let observed = instance["observedAt"]?.stringValue.flatMap(Timestamp.parse) ?? recorded
        let (num, body) = encode(instance)
        return Row(
            entityID: entityID, name: name, datasetID: instance["datasetId"]?.stringValue ?? "",
            observed: micros(observed), recorded: micros(recorded), num: num, body: body)
    }

    /// Splits an instance into the numeric value (if it has one) and the rest, without what the row's
    /// columns or its series hold (times, datasetId, `"type": "Property"`). Nil body when nothing is left.
    static func encode(_ instance: [String: JSON]) -> (Double?, String?) {
        // A number goes in its own column (an integral double and an integer are written alike in JSON).
        var num: Double?
        if let value = instance["value"], value.isNumber {
            if case .integer(let i) = value, i.magnitude > 1 << 53 {} else { num = value.numberValue }
        }
        // The rest in one pass: built, not copied and then taken apart.
        var rest: [String: JSON] = [:]
        rest.reserveCapacity(instance.count)
        for (key, value) in instance {
            switch key {
            case "createdAt", "modifiedAt", "observedAt", "datasetId", "instanceId": continue
            case "value" where num != nil: continue
            case "type" where value == "Property": continue
            default: break
            }
            if case .object(let sub) = value, !AttributeType.reservedMembers.contains(key) {
                rest[key] = .object(stripSystemTimes(sub))
            } else {
                rest[key] = value
            }
        }
        return (num, rest.isEmpty ? nil : JSONCoding.string(.object(rest)))
    }

    /// The stored instance again, with its observedAt, datasetId and instanceId.
    static func decode(num: Double?, body: String?, observed: Int64, datasetID: String, instance: Int64) -> [String: JSON] {
        var out = body.flatMap { try? JSONCoding.parse($0).objectValue } ?? [:]
        // Sized once for the members added here and the system times a caller may add.
        out.reserveCapacity(out.count + 7)
        if let num { out["value"] = .double(num) }
        if out["type"] == nil { out["type"] = "Property" }
        out["observedAt"] = .string(Timestamp.string(date(observed)))
        if !datasetID.isEmpty { out["datasetId"] = .string(datasetID) }
        out["instanceId"] = .string(instanceURI(instance))
        return out
    }

    static func instanceURI(_ n: Int64) -> String { "urn:ngsi-ld:Instance:\(n)" }

    static func instanceNumber(_ uri: String) -> Int64? {
        guard uri.hasPrefix("urn:ngsi-ld:Instance:") else { return nil }
        return Int64(uri.dropFirst("urn:ngsi-ld:Instance:".count))
    }

    static func stripSystemTimes(_ instance: [String: JSON]) -> [String: JSON] {
        var out = instance
        out["createdAt"] = nil
        out["modifiedAt"] = nil
        for (key, value) in instance {
            if case .object(let sub) = value, !AttributeType.reservedMembers.contains(key) { out[key] = .object(stripSystemTimes(sub)) }
        }
        return out
    }

    /// What `write` sends for `rows`. On PostgreSQL JSON arrays of their series `[entity, name, datasetId,
    /// types]` (with the entity's types) and of their instances `[entity, name, datasetId, observed, recorded,
    /// num, body]` (a trigger adds up each statement's instances by hour). On SQLite the rows themselves, each
    /// with the index of its series, and their hourly totals by series.
    enum Payload: Sendable {
        case json(series: [String], instances: [String])
        case rows(SQLiteRows)
    }

    struct SQLiteRows: Sendable {
        /// Each series once, in the order it first appears, and the `types` text to record for it.
        let series: [SeriesKey]
        let types: [String]
        let rows: [Row]
        /// The index in `series` of each row's series.
        let rowSeries: [Int]
        let hours: [Hour]
    }

    /// The totals of a series' instances in one hour.
    struct Hour: Sendable {
        let series: Int
        let hour: Int64
        let totals: HistoryRollup.Totals
    }

    /// A series as `payload` tells them apart.
    struct SeriesKey: Hashable, Sendable {
        let entityID: String, name: String, datasetID: String
    }

    static func payload(_ rows: [Row], types: [String: [String]], kind: DialectKind) -> Payload {
        var index = [SeriesKey: Int](minimumCapacity: rows.count)
        var series: [SeriesKey] = []
        var seriesTypes: [String] = []
        var rowSeries: [Int] = []
        rowSeries.reserveCapacity(rows.count)
        // An entity's rows come one after another: its type list is written once for them.
        var typeList: (entityID: String, text: String)?
        for row in rows {
            let key = SeriesKey(entityID: row.entityID, name: row.name, datasetID: row.datasetID)
            if let known = index[key] {
                rowSeries.append(known)
                continue
            }
            if typeList?.entityID != row.entityID {
                typeList = (row.entityID, JSONCoding.string(.array((types[row.entityID] ?? []).map(JSON.string))))
            }
            index[key] = series.count
            rowSeries.append(series.count)
            series.append(key)
            seriesTypes.append(typeList!.text)
        }
        guard kind == .postgres else {
            return .rows(SQLiteRows(series: series, types: seriesTypes, rows: rows, rowSeries: rowSeries, hours: hourlyTotals(rows, series: rowSeries)))
        }
        let seriesRows: [JSON] = zip(series, seriesTypes).map { key, types in
            .array([.string(key.entityID), .string(key.name), .string(key.datasetID), .string(types)])
        }
        let instances: [JSON] = rows.map { row in
            .array([.string(row.entityID), .string(row.name), .string(row.datasetID), .integer(row.observed), .integer(row.recorded),
                    row.num.map(JSON.double) ?? .null, row.body.map(JSON.string) ?? .null])
        }
        return .json(
            series: seriesRows.chunked(1000).map { JSONCoding.string(.array(Array($0))) },
            instances: instances.chunked(2000).map { JSONCoding.string(.array(Array($0))) })
    }

    /// The rows' totals by series (`series[i]` is row i's) and hour, in the order each first appears. A
    /// series' instances usually come one after another, so a row is first compared with the one before it.
    static func hourlyTotals(_ rows: [Row], series: [Int]) -> [Hour] {
        struct Key: Hashable {
            let series: Int, hour: Int64
        }
        var keys: [Key] = []
        var totals: [HistoryRollup.Totals] = []
        var index: [Key: Int] = [:]
        var previous = -1
        for (row, s) in zip(rows, series) {
            let key = Key(series: s, hour: HistoryRollup.hourStart(row.observed))
            let i: Int
            if previous >= 0, keys[previous] == key {
                i = previous
            } else if let known = index[key] {
                i = known
            } else {
                i = keys.count
                index[key] = i
                keys.append(key)
                totals.append(HistoryRollup.Totals())
            }
            var one = HistoryRollup.Totals(count: 1)
            if let num = row.num { (one.numeric, one.sum, one.sumsq, one.min, one.max) = (1, num, num * num, num, num) }
            totals[i].add(one)
            previous = i
        }
        return zip(keys, totals).map { Hour(series: $0.series, hour: $0.hour, totals: $1) }
    }

    /// Writes rows: makes their series (recording the entity's types), then inserts the instances (JSON arrays
    /// in one statement on PostgreSQL, rows bound one by one on SQLite). What it learnt of the series' ids is
    /// for `seriesIDs.add` once the transaction has committed.
    @discardableResult
    static func write(
        _ rows: [Row], types: [String: [String]], tenant: Tenant, kind: DialectKind, seriesIDs: HistorySeriesIDs?, on db: any SQLDatabase
    ) async throws -> HistorySeriesIDs.Learnt? {
        guard !rows.isEmpty else { return nil }
        var statements = StatementGroup(kind, on: db)
        let learnt = try await write(payload(rows, types: types, kind: kind), tenant: tenant, seriesIDs: seriesIDs, into: &statements)
        try await statements.run()
        return learnt
    }

    static func write(
        _ payload: Payload, tenant: Tenant, seriesIDs: HistorySeriesIDs?, into statements: inout StatementGroup
    ) async throws -> HistorySeriesIDs.Learnt? {
        switch payload {
        case .json(let series, let instances):
            // Series and instances in one statement: the instances take the id of a series made (or whose
            // types changed) in this statement from its RETURNING rows, otherwise the stored one, found by
            // one index lookup per row (LATERAL … LIMIT 1; without statistics the planner scanned every series).
            // Every instance has its series among these: none means nothing to write.
            guard !series.isEmpty else { return nil }
            for (i, json) in series.enumerated() {
                try await statements.append("""
                    INSERT INTO history_series (tenant, entity_id, name, dataset_id, types)
                    SELECT \(bind: tenant.name), j->>0, j->>1, j->>2, j->>3 FROM jsonb_array_elements(CAST(\(bind: json) AS jsonb)) AS j
                    ON CONFLICT (tenant, entity_id, name, dataset_id) DO UPDATE SET types = excluded.types WHERE history_series.types <> excluded.types
                    RETURNING id, entity_id, name, dataset_id
                    """, as: "series\(i)")
            }
            let made = (series.indices.map { "SELECT * FROM \(unsafeRaw: "series\($0)")" as SQLQueryString } as [SQLQueryString]).joined(separator: " UNION ALL ")
            for json in instances {
                try await statements.append("""
                    INSERT INTO history (series, observed, recorded, num, body)
                    SELECT COALESCE(m.id, s.id), (x.j->>3)::bigint, (x.j->>4)::bigint, (x.j->>5)::float8, x.j->>6
                    FROM jsonb_array_elements(CAST(\(bind: json) AS jsonb)) WITH ORDINALITY AS x(j, ord)
                    LEFT JOIN (
                    """ + made + """
                    ) AS m ON m.entity_id = x.j->>0 AND m.name = x.j->>1 AND m.dataset_id = x.j->>2
                    LEFT JOIN LATERAL (
                      SELECT h.id FROM history_series h WHERE h.tenant = \(bind: tenant.name) AND h.entity_id = x.j->>0 AND h.name = x.j->>1 AND h.dataset_id = x.j->>2 LIMIT 1) AS s ON true
                    ORDER BY x.ord
                    """)
            }
            return nil
        case .rows(let p):
            return try writeRows(p, tenant: tenant, seriesIDs: seriesIDs, into: &statements)
        }
    }

    /// SQLite: the series not known to `seriesIDs` are upserted (their ids returned), then the instances and
    /// hourly totals are inserted with their series' ids.
    private static func writeRows(
        _ p: SQLiteRows, tenant: Tenant, seriesIDs: HistorySeriesIDs?, into statements: inout StatementGroup
    ) throws -> HistorySeriesIDs.Learnt? {
        let (generation, known) = seriesIDs?.lookUp(tenant: tenant.name, p.series, types: p.types) ?? (0, Array(repeating: nil, count: p.series.count))
        var ids = known.map { $0 ?? 0 }
        let missing = known.indices.filter { known[$0] == nil }
        try statements.appendEach("""
            INSERT INTO history_series (tenant, entity_id, name, dataset_id, types) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (tenant, entity_id, name, dataset_id) DO UPDATE SET types = excluded.types RETURNING id
            """, count: missing.count,
            bind: { n, b in
                let i = missing[n]
                b.bind(tenant.name)
                b.bind(p.series[i].entityID)
                b.bind(p.series[i].name)
                b.bind(p.series[i].datasetID)
                b.bind(p.types[i])
            },
            returned: { n, id in ids[missing[n]] = id })
        guard missing.allSatisfy({ ids[$0] != 0 }) else { throw StorageError.unexpectedRow("a history series upsert returned no id") }
        try statements.appendEach("INSERT INTO history (series, observed, recorded, num, body) VALUES (?, ?, ?, ?, ?)", count: p.rows.count) { n, b in
            let row = p.rows[n]
            b.bind(ids[p.rowSeries[n]])
            b.bind(row.observed)
            b.bind(row.recorded)
            b.bind(row.num)
            b.bind(row.body)
        }
        // A comparison with NULL is not true: a NULL min or max is replaced, a NULL newcomer is not taken.
        try statements.appendEach("""
            INSERT INTO history_hours (series, hour, n, num_n, sum, sumsq, min, max) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (series, hour) DO UPDATE SET
                n = history_hours.n + excluded.n, num_n = history_hours.num_n + excluded.num_n,
                sum = history_hours.sum + excluded.sum, sumsq = history_hours.sumsq + excluded.sumsq,
                min = CASE WHEN history_hours.min IS NULL OR excluded.min < history_hours.min THEN excluded.min ELSE history_hours.min END,
                max = CASE WHEN history_hours.max IS NULL OR excluded.max > history_hours.max THEN excluded.max ELSE history_hours.max END
            """, count: p.hours.count) { n, b in
            let hour = p.hours[n]
            b.bind(ids[hour.series])
            b.bind(hour.hour)
            b.bind(hour.totals.count)
            b.bind(hour.totals.numeric)
            b.bind(hour.totals.sum)
            b.bind(hour.totals.sumsq)
            b.bind(hour.totals.min)
            b.bind(hour.totals.max)
        }
        guard seriesIDs != nil, !missing.isEmpty else { return nil }
        var learnt = HistorySeriesIDs.Learnt(generation: generation)
        learnt.series.reserveCapacity(missing.count)
        for i in missing {
            let key = p.series[i]
            learnt.series.append((
                HistorySeriesIDs.EntityKey(tenant: tenant.name, entityID: key.entityID),
                HistorySeriesIDs.AttributeKey(name: key.name, datasetID: key.datasetID),
                HistorySeriesIDs.Known(id: ids[i], types: p.types[i])))
        }
        return learnt
    }

    /// The instances of `attribute` kept within `window` (a condition on `h`) for the entity that the outer
    /// query's series `s` names: what to select them `from` (series `hs`, instances `h`) and the `filter`.
    static func kept(_ attribute: String, tenant: Tenant, window: SQLQueryString) -> (from: SQLQueryString, filter: SQLQueryString) {
        ("FROM history_series hs JOIN history h ON h.series = hs.id",
         "hs.tenant = \(bind: tenant.name) AND hs.entity_id = s.entity_id AND hs.name = \(bind: attribute)" + window)
    }

    /// Deletes the whole history of entities: their rollups, instances and series (forgotten by `seriesIDs`).
    static func deleteEntities(_ ids: [String], tenant: Tenant, seriesIDs: HistorySeriesIDs?, on db: any SQLDatabase) async throws {
        seriesIDs?.forget(tenant: tenant.name, entityIDs: ids)
        for chunk in ids.chunked(400) {
            try await HistoryRollup.delete(seriesWhere: "tenant = \(bind: tenant.name) AND entity_id IN (\(binds: chunk))", on: db)
            try await db.raw("DELETE FROM history WHERE series IN (SELECT id FROM history_series WHERE tenant = \(bind: tenant.name) AND entity_id IN (\(binds: chunk)))").run()
            try await db.raw("DELETE FROM history_series WHERE tenant = \(bind: tenant.name) AND entity_id IN (\(binds: chunk))").run()
        }
    }
}
