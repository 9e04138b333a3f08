import CityKit
import Foundation
import SQLKit
import Storage

/// Translates a `q` expression (names already expanded) into a SQL condition over the `entities` row `e`,
/// or over an entity's history.
///
/// Attribute instances live in `e.attrs` as `{name: [instance…]}`; a term matches when any instance of the
/// attribute matches. Every literal is a bound parameter; comparisons check the JSON type first so that a
/// string never compares with a number.
struct QSQLCompiler {
    /// Which instances a term looks at.
    enum Instances {
        /// The current state, `e.attrs` (and the value index `attr_values`).
        case current
        /// Every instance kept in history within a time window (a condition on `h`, the instance's row), of
        /// the entity `s.entity_id` names: a term matches when it held for some instance in the window.
        case history(window: SQLQueryString)
    }

    let kind: DialectKind
    let tenant: Tenant
    var instances = Instances.current

    func compile(_ expression: QExpression) -> SQLQueryString {
        switch expression {
        case .and(let items): return "(" + (items.map(compile) as [SQLQueryString]).joined(separator: " AND ") + ")"
        case .or(let items): return "(" + (items.map(compile) as [SQLQueryString]).joined(separator: " OR ") + ")"
        case .term(let term): return compile(term)
        }
    }

    private func compile(_ term: QTerm) -> SQLQueryString {
        let attribute = term.path.attribute
        guard let op = term.op, let value = term.value else {
            let exists = existence(term.path)
            return term.negated ? "NOT \(exists)" : exists
        }
        if case .current = instances, let indexed = indexed(term.path, op, value) { return indexed }
        if case .history = instances, term.path.metadata != nil, case .dateTime(let text) = value, let date = Timestamp.parse(text),
            Timestamp.string(date) != text
        {
            // History writes its times as `Timestamp` does (milliseconds, `Z`): compare in that form.
            var canonical = term
            canonical.value = .dateTime(Timestamp.string(date))
            return compile(canonical)
        }
        let condition: SQLQueryString
        switch (op, value) {
        case (.equal, .list(let items)):
            condition = "(" + (items.map { compare($0, .equal, term.path) } as [SQLQueryString]).joined(separator: " OR ") + ")"
        case (.unequal, .list(let items)):
            condition = "NOT (" + (items.map { compare($0, .equal, term.path) } as [SQLQueryString]).joined(separator: " OR ") + ")"
        case (.equal, .range(let low, let high)):
            condition = "(\(compare(low, .greaterOrEqual, term.path)) AND \(compare(high, .lessOrEqual, term.path)))"
        case (.unequal, .range(let low, let high)):
            condition = "NOT (\(compare(low, .greaterOrEqual, term.path)) AND \(compare(high, .lessOrEqual, term.path)))"
        case (.unequal, _):
            condition = "NOT \(compare(value, .equal, term.path))"
        case (.notMatches, _):
            condition = "NOT \(compare(value, .matches, term.path))"
        default:
            condition = compare(value, op, term.path)
        }
        return anyInstance(of: attribute, where: condition)
    }

    /// A comparison of a top-level attribute with numbers or strings, answered from `attr_values`.
    private func indexed(_ path: QPath, _ op: QTerm.Operator, _ value: QValue) -> SQLQueryString? {
        guard path.subAttributes.isEmpty, path.metadata == nil, path.compound.isEmpty else { return nil }
        func column(_ v: QValue) -> (String, any Encodable & Sendable)? {
            switch v {
            case .number(let n): ("v.kind = 'n' AND v.num", n)
            case .string(let s), .uri(let s), .dateTime(let s): ("v.kind = 's' AND v.num = 0 AND v.str", s)
            default: nil
            }
        }
        let condition: SQLQueryString
        switch (op, value) {
        case (.matches, _), (.notMatches, _), (.unequal, _):
            return nil
        case (.equal, .list(let items)):
            let columns = items.compactMap(column)
            guard columns.count == items.count, !columns.isEmpty else { return nil }
            condition = "(" + (columns.map { "(\(unsafeRaw: $0.0) = \(bind: $0.1))" } as [SQLQueryString]).joined(separator: " OR ") + ")"
        case (.equal, .range(let low, let high)):
            guard let l = column(low), let h = column(high), l.0 == h.0 else { return nil }
            condition = "\(unsafeRaw: l.0) >= \(bind: l.1) AND \(unsafeRaw: String(h.0.split(separator: " ").last!)) <= \(bind: h.1)"
        default:
            guard let c = column(value) else { return nil }
            let sqlOp = [QTerm.Operator.equal: "=", .greater: ">", .greaterOrEqual: ">=", .less: "<", .lessOrEqual: "<="][op]!
            condition = "\(unsafeRaw: c.0) \(unsafeRaw: sqlOp) \(bind: c.1)"
        }
        return "e.id IN (SELECT v.entity_id FROM attr_values v WHERE v.tenant = \(bind: tenant.name) AND v.name = \(bind: path.attribute) AND \(condition))"
    }

    private func anyInstance(of attribute: String, where condition: SQLQueryString) -> SQLQueryString {
        if case .history(let window) = instances { return anyKeptInstance(of: attribute, in: window, where: condition) }
        switch kind {
        case .sqlite:
            return "EXISTS (SELECT 1 FROM json_each(e.attrs, \(bind: Self.sqlitePath([attribute]))) AS i WHERE \(condition))"
        case .postgres:
            return "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e.attrs -> \(bind: attribute)) = 'array' THEN e.attrs -> \(bind: attribute) ELSE '[]'::jsonb END) AS i(v) WHERE \(condition))"
        }
    }

    /// An instance in history, rebuilt as JSON (its row's number and observedAt put back) so that the
    /// comparisons of the current state apply to it unchanged: `i.value` on SQLite, `i.v` on PostgreSQL.
    private func anyKeptInstance(of attribute: String, in window: SQLQueryString, where condition: SQLQueryString) -> SQLQueryString {
        let kept = History.kept(attribute, tenant: tenant, window: window)
        let match: SQLQueryString = " WHERE " + kept.filter + " AND \(condition))"
        switch kind {
        case .sqlite:
            let body: SQLQueryString = "json_set(COALESCE(h.body, '{}'), '$.observedAt', strftime('%Y-%m-%dT%H:%M:%fZ', h.observed / 1000000.0, 'unixepoch'))"
            return "EXISTS (SELECT 1 " + kept.from + " CROSS JOIN json_each(json_array(json(CASE WHEN h.num IS NULL THEN " + body + " ELSE json_set(" + body + ", '$.value', h.num) END))) AS i" + match
        case .postgres:
            return "EXISTS (SELECT 1 " + kept.from + """
                 CROSS JOIN LATERAL (SELECT COALESCE(CAST(h.body AS jsonb), '{}'::jsonb)
                    || jsonb_build_object('observedAt', to_char(to_timestamp(h.observed / 1000000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                    || CASE WHEN h.num IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('value', h.num) END AS v) AS i
                """ + match
        }
    }

    private func existence(_ path: QPath) -> SQLQueryString {
        if path.subAttributes.isEmpty && path.metadata == nil && path.compound.isEmpty {
            if case .history = instances { return anyInstance(of: path.attribute, where: "TRUE") }
            switch kind {
            case .sqlite: return "(json_type(e.attrs, \(bind: Self.sqlitePath([path.attribute]))) IS NOT NULL)"
            case .postgres: return "jsonb_exists(e.attrs, \(bind: path.attribute))"
            }
        }
        let members = memberPaths(path, dateTime: false)
        switch kind {
        case .sqlite:
            let checks = (members.map { "json_type(i.value, \(bind: Self.sqlitePath($0))) IS NOT NULL" } as [SQLQueryString]).joined(separator: " OR ")
            return anyInstance(of: path.attribute, where: "(\(checks))")
        case .postgres:
            let checks = (members.map { "(i.v #> \(bind: $0)) IS NOT NULL" } as [SQLQueryString]).joined(separator: " OR ")
            return anyInstance(of: path.attribute, where: "(\(checks))")
        }
    }

    /// The JSON paths inside an instance where the compared value may be, tried in order.
    private func memberPaths(_ path: QPath, dateTime: Bool) -> [[String]] {
        let prefix = path.subAttributes
        if let metadata = path.metadata { return [prefix + [metadata]] }
        var out: [[String]] = []
        // `languageMap` makes `name[zh]=="…"` compare one language of a LanguageProperty.
        for member in ["value", "object", "vocab", "languageMap"] {
            if dateTime && member == "value" { out.append(prefix + ["value", "@value"] + path.compound) }
            out.append(prefix + [member] + path.compound)
        }
        return out
    }

    private func compare(_ value: QValue, _ op: QTerm.Operator, _ path: QPath) -> SQLQueryString {
        let isDate: Bool
        if case .dateTime = value { isDate = true } else { isDate = false }
        let paths = memberPaths(path, dateTime: isDate)
        let sqlOp: String
        switch op {
        case .equal: sqlOp = "="
        case .unequal: sqlOp = "<>"
        case .greater: sqlOp = ">"
        case .greaterOrEqual: sqlOp = ">="
        case .less: sqlOp = "<"
        case .lessOrEqual: sqlOp = "<="
        case .matches, .notMatches: sqlOp = "~"
        }
        switch kind {
        case .sqlite:
            let v = Self.coalesce(paths.map { "json_extract(i.value, \(bind: Self.sqlitePath($0)))" })
            let t = Self.coalesce(paths.map { "json_type(i.value, \(bind: Self.sqlitePath($0)))" })
            switch value {
            case .number(let n): return "COALESCE(\(t) IN ('integer','real') AND \(v) \(unsafeRaw: sqlOp) \(bind: n), 0)"
            case .string(let s) where op == .matches: return "(\(t) = 'text' AND regexp(\(bind: s), \(v)) = 1)"
            case .string(let s), .uri(let s), .dateTime(let s): return "COALESCE(\(t) = 'text' AND \(v) \(unsafeRaw: sqlOp) \(bind: s), 0)"
            case .bool(let b): return op == .equal ? "(\(t) = \(literal: b ? "true" : "false"))" : "(\(t) IN ('true','false') AND \(t) \(unsafeRaw: sqlOp) \(literal: b ? "true" : "false"))"
            case .null: return "(\(t) = 'null')"
            case .list, .range: return "FALSE"
            }
        case .postgres:
            let v = Self.coalesce(paths.map { "i.v #> \(bind: $0)" })
            switch value {
            case .number(let n): return "COALESCE((CASE WHEN jsonb_typeof(\(v)) = 'number' THEN (\(v))::float8 END) \(unsafeRaw: sqlOp) \(bind: n), FALSE)"
            case .string(let s) where op == .matches: return "COALESCE(jsonb_typeof(\(v)) = 'string' AND (\(v) #>> '{}') ~ \(bind: PostgresRegex.translate(s)), FALSE)"
            case .string(let s), .uri(let s), .dateTime(let s): return "COALESCE(jsonb_typeof(\(v)) = 'string' AND (\(v) #>> '{}') \(unsafeRaw: sqlOp) \(bind: s), FALSE)"
            case .bool(let b): return "COALESCE((CASE WHEN jsonb_typeof(\(v)) = 'boolean' THEN (\(v))::boolean END) \(unsafeRaw: sqlOp) \(bind: b), FALSE)"
            case .null: return "COALESCE(jsonb_typeof(\(v)) = 'null', FALSE)"
            case .list, .range: return "FALSE"
            }
        }
    }

    static func coalesce(_ items: [SQLQueryString]) -> SQLQueryString {
        items.count == 1 ? items[0] : "COALESCE(" + items.joined(separator: ", ") + ")"
    }

    /// A SQLite JSON path with every member quoted: `$."a"."b"`.
    static func sqlitePath(_ members: [String]) -> String {
        "$" + members.map { ".\"\($0)\"" }.joined()
    }
}
