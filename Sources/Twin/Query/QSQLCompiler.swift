import CityKit
import SQLKit
import Storage

/// Translates a `q` expression (names already expanded) into a SQL condition over the `entities` row `e`.
///
/// Attribute instances live in `e.attrs` as `{name: [instance…]}`; a term matches when any instance of the
/// attribute matches. Every literal is a bound parameter; comparisons check the JSON type first so that a
/// string never compares with a number.
struct QSQLCompiler {
    let kind: DialectKind

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

    private func anyInstance(of attribute: String, where condition: SQLQueryString) -> SQLQueryString {
        switch kind {
        case .sqlite:
            return "EXISTS (SELECT 1 FROM json_each(e.attrs, \(bind: Self.sqlitePath([attribute]))) AS i WHERE \(condition))"
        case .postgres:
            return "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e.attrs -> \(bind: attribute)) = 'array' THEN e.attrs -> \(bind: attribute) ELSE '[]'::jsonb END) AS i(v) WHERE \(condition))"
        }
    }

    private func existence(_ path: QPath) -> SQLQueryString {
        if path.subAttributes.isEmpty && path.metadata == nil && path.compound.isEmpty {
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
        for member in ["value", "object", "vocab"] {
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
            case .string(let s) where op == .matches: return "COALESCE(jsonb_typeof(\(v)) = 'string' AND (\(v) #>> '{}') ~ \(bind: s), FALSE)"
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
