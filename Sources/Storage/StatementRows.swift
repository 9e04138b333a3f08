import CityKit

/// The rows one statement writes, as each backend takes them best: on PostgreSQL JSON arrays of rows (one
/// bound value per statement, and a statement text that does not grow with the rows); on SQLite the rows'
/// values, bound in turn to one kept statement (no JSON to write, nor for SQLite to parse).
public enum StatementRows: Sendable {
    case json([String])
    case values([[JSON]])

    /// `rows` for `kind`: on PostgreSQL in JSON arrays of at most `chunk` rows.
    public init(_ rows: [[JSON]], kind: DialectKind, chunk: Int) {
        guard kind == .postgres else {
            self = .values(rows)
            return
        }
        self = .json(rows.chunked(chunk).map { JSONCoding.string(.array($0.map(JSON.array))) })
    }
}
