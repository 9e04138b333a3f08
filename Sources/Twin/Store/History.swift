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

    /// What `write` sends for `rows`: their series `[entity, name, datasetId, types]` (with the entity's types),
    /// their instances `[entity, name, datasetId, observed, recorded, num, body]`, and on SQLite their hourly
    /// totals `[entity, name, datasetId, hour, count, numeric count, sum, sum of squares, min, max]` (on
    /// PostgreSQL a trigger adds up each statement's instances).
    struct Payload: Sendable {
        let series: StatementRows
        let instances: StatementRows
        let hours: [[JSON]]
    }

    /// A series as `payload` tells them apart.
    struct SeriesKey: Hashable {
        let entityID: String, name: String, datasetID: String
    }

    static func payload(_ rows: [Row], types: [String: [String]], kind: DialectKind) -> Payload {
        var seriesSeen = Set<SeriesKey>(minimumCapacity: rows.count)
        var series: [[JSON]] = []
        series.reserveCapacity(rows.count)
        // An entity's rows come one after another: its type list is written once for them.
        var typeList: (entityID: String, text: JSON)?
        for row in rows where seriesSeen.insert(SeriesKey(entityID: row.entityID, name: row.name, datasetID: row.datasetID)).inserted {
            if typeList?.entityID != row.entityID {
                typeList = (row.entityID, .string(JSONCoding.string(.array((types[row.entityID] ?? []).map(JSON.string)))))
            }
            series.append([.string(row.entityID), .string(row.name), .string(row.datasetID), typeList!.text])
        }
        let instances: [[JSON]] = rows.map { row in
            [.string(row.entityID), .string(row.name), .string(row.datasetID), .integer(row.observed), .integer(row.recorded),
             row.num.map(JSON.double) ?? .null, row.body.map(JSON.string) ?? .null]
        }
        return Payload(
            series: StatementRows(series, kind: kind, chunk: 1000), instances: StatementRows(instances, kind: kind, chunk: 2000),
            hours: kind == .sqlite ? hourlyTotals(rows) : [])
    }

    /// The rows' totals by series and hour, in the order each first appears. A series' instances usually
    /// come one after another, so a row is first compared with the one before it.
    static func hourlyTotals(_ rows: [Row]) -> [[JSON]] {
        struct Key: Hashable {
            let entityID: String, name: String, datasetID: String, hour: Int64
        }
        var keys: [Key] = []
        var totals: [HistoryRollup.Totals] = []
        var index: [Key: Int] = [:]
        var previous = -1
        for row in rows {
            let hour = HistoryRollup.hourStart(row.observed)
            let i: Int
            if previous >= 0, case let last = keys[previous], last.hour == hour, last.entityID == row.entityID, last.name == row.name, last.datasetID == row.datasetID {
                i = previous
            } else {
                let key = Key(entityID: row.entityID, name: row.name, datasetID: row.datasetID, hour: hour)
                if let known = index[key] {
                    i = known
                } else {
                    i = keys.count
                    index[key] = i
                    keys.append(key)
                    totals.append(HistoryRollup.Totals())
                }
            }
            var one = HistoryRollup.Totals(count: 1)
            if let num = row.num { (one.numeric, one.sum, one.sumsq, one.min, one.max) = (1, num, num * num, num, num) }
            totals[i].add(one)
            previous = i
        }
        return zip(keys, totals).map { key, t in
            [.string(key.entityID), .string(key.name), .string(key.datasetID), .integer(key.hour), .integer(t.count), .integer(t.numeric),
             .double(t.sum), .double(t.sumsq), t.min.map(JSON.double) ?? .null, t.max.map(JSON.double) ?? .null]
        }
    }

    /// Writes rows: makes their series (recording the entity's types), then inserts the instances (JSON arrays
    /// in one statement on PostgreSQL, rows bound one by one on SQLite).
    static func write(_ rows: [Row], types: [String: [String]], tenant: Tenant, kind: DialectKind, on db: any SQLDatabase) async throws {
        guard !rows.isEmpty else { return }
        var statements = StatementGroup(kind, on: db)
        try await write(payload(rows, types: types, kind: kind), tenant: tenant, kind: kind, into: &statements)
        try await statements.run()
    }

    static func write(_ payload: Payload, tenant: Tenant, kind: DialectKind, into statements: inout StatementGroup) async throws {
        let upsertSeries = " ON CONFLICT (tenant, entity_id, name, dataset_id) DO UPDATE SET types = excluded.types WHERE history_series.types <> excluded.types"
        switch (payload.series, payload.instances) {
        case (.json(let series), .json(let instances)):
            // Series and instances in one statement: the instances take the id of a series made (or whose
            // types changed) in this statement from its RETURNING rows, otherwise the stored one, found by
            // one index lookup per row (LATERAL … LIMIT 1; without statistics the planner scanned every series).
            // Every instance has its series among these: none means nothing to write.
            guard !series.isEmpty else { return }
            for (i, json) in series.enumerated() {
                try await statements.append("""
                    INSERT INTO history_series (tenant, entity_id, name, dataset_id, types)
                    SELECT \(bind: tenant.name), j->>0, j->>1, j->>2, j->>3 FROM jsonb_array_elements(CAST(\(bind: json) AS jsonb)) AS j
                    """ + SQLQueryString(upsertSeries) + " RETURNING id, entity_id, name, dataset_id", as: "series\(i)")
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
        case (.values(let series), .values(let instances)):
            let tenantValue: [JSON] = [.string(tenant.name)]
            try await statements.appendEach(
                "INSERT INTO history_series (tenant, entity_id, name, dataset_id, types) VALUES (?, ?, ?, ?, ?)" + upsertSeries, prefix: tenantValue, rows: series)
            // Numbered: the tenant (?1), then the row's values in its order.
            try await statements.appendEach("""
                INSERT INTO history (series, observed, recorded, num, body)
                SELECT s.id, ?5, ?6, ?7, ?8 FROM history_series s WHERE s.tenant = ?1 AND s.entity_id = ?2 AND s.name = ?3 AND s.dataset_id = ?4
                """, prefix: tenantValue, rows: instances)
            // A comparison with NULL is not true: a NULL min or max is replaced, a NULL newcomer is not taken.
            try await statements.appendEach("""
                INSERT INTO history_hours (series, hour, n, num_n, sum, sumsq, min, max)
                SELECT s.id, ?5, ?6, ?7, ?8, ?9, ?10, ?11 FROM history_series s WHERE s.tenant = ?1 AND s.entity_id = ?2 AND s.name = ?3 AND s.dataset_id = ?4
                ON CONFLICT (series, hour) DO UPDATE SET
                    n = history_hours.n + excluded.n, num_n = history_hours.num_n + excluded.num_n,
                    sum = history_hours.sum + excluded.sum, sumsq = history_hours.sumsq + excluded.sumsq,
                    min = CASE WHEN history_hours.min IS NULL OR excluded.min < history_hours.min THEN excluded.min ELSE history_hours.min END,
                    max = CASE WHEN history_hours.max IS NULL OR excluded.max > history_hours.max THEN excluded.max ELSE history_hours.max END
                """, prefix: tenantValue, rows: payload.hours)
        default:
            preconditionFailure("series and instances are encoded for one backend")
        }
    }

    /// The instances of `attribute` kept within `window` (a condition on `h`) for the entity that the outer
    /// query's series `s` names: what to select them `from` (series `hs`, instances `h`) and the `filter`.
    static func kept(_ attribute: String, tenant: Tenant, window: SQLQueryString) -> (from: SQLQueryString, filter: SQLQueryString) {
        ("FROM history_series hs JOIN history h ON h.series = hs.id",
         "hs.tenant = \(bind: tenant.name) AND hs.entity_id = s.entity_id AND hs.name = \(bind: attribute)" + window)
    }

    /// Deletes the whole history of entities: their rollups, instances and series.
    static func deleteEntities(_ ids: [String], tenant: Tenant, on db: any SQLDatabase) async throws {
        for chunk in ids.chunked(400) {
            try await HistoryRollup.delete(seriesWhere: "tenant = \(bind: tenant.name) AND entity_id IN (\(binds: chunk))", on: db)
            try await db.raw("DELETE FROM history WHERE series IN (SELECT id FROM history_series WHERE tenant = \(bind: tenant.name) AND entity_id IN (\(binds: chunk)))").run()
            try await db.raw("DELETE FROM history_series WHERE tenant = \(bind: tenant.name) AND entity_id IN (\(binds: chunk))").run()
        }
    }
}
