import CityKit
import SQLKit

/// Write statements that change disjoint rows, run together: on SQLite each as it is added (in process,
/// nothing to save by waiting); on PostgreSQL kept and sent by `run()` as one statement of data-modifying
/// `WITH` parts, one round trip instead of one per statement.
///
/// On PostgreSQL every part sees the database as it was before the group (one snapshot), so no part may
/// change a row another part changes or read what another part writes, except through a named part's
/// `RETURNING` rows, which later parts may select by its name.
public struct StatementGroup: Sendable {
    struct Part: Sendable {
        let name: String?
        let sql: SQLQueryString
    }

    private let kind: DialectKind
    private let db: any SQLDatabase
    private var parts: [Part] = []

    public init(_ kind: DialectKind, on db: any SQLDatabase) {
        self.kind = kind
        self.db = db
    }

    /// Adds a statement (SQLite runs it now); `name` (PostgreSQL) lets later parts select its `RETURNING` rows.
    public mutating func append(_ sql: SQLQueryString, as name: String? = nil) async throws {
        if kind == .sqlite {
            try await db.raw(sql).run()
        } else {
            parts.append(Part(name: name, sql: sql))
        }
    }

    /// Adds a statement run once per row (SQLite): `prefix`, then the row's values, bound to its
    /// placeholders in order, on one kept statement.
    public mutating func appendEach(_ sql: String, prefix: [JSON] = [], rows: [[JSON]]) async throws {
        guard !rows.isEmpty else { return }
        guard kind == .sqlite, let writer = db as? SQLiteInlineConnection else { throw StorageError.notTheWriter }
        try writer.runEach(sql: sql, prefix: prefix, rows: rows)
    }

    /// Adds a statement run once for each of `count` rows (SQLite), `bind` giving row n's values for its
    /// placeholders in order; `returned` receives n and the first column of the row the statement returned.
    public mutating func appendEach(
        _ sql: String, count: Int, bind: (Int, inout SQLiteBinder) -> Void, returned: ((Int, Int64) -> Void)? = nil
    ) throws {
        guard count > 0 else { return }
        guard kind == .sqlite, let writer = db as? SQLiteInlineConnection else { throw StorageError.notTheWriter }
        try writer.runEach(sql: sql, count: count, bind: bind, returned: returned)
    }

    /// Runs what was kept (PostgreSQL), as one statement.
    public mutating func run() async throws {
        defer { parts = [] }
        if parts.count == 1 { return try await db.raw(parts[0].sql).run() }
        guard !parts.isEmpty else { return }
        let ctes = parts.enumerated().map { i, part in SQLQueryString(part.name ?? "w\(i)") + " AS (" + part.sql + ")" }
        try await db.raw("WITH " + ctes.joined(separator: ", ") + " SELECT 1").run()
    }
}
