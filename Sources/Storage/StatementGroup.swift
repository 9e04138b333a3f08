import SQLKit

/// Write statements that change disjoint rows, run together: one after another on SQLite (in process,
/// nothing to save); on PostgreSQL as one statement of data-modifying `WITH` parts, one round trip instead
/// of one per statement.
///
/// On PostgreSQL every part sees the database as it was before the group (one snapshot), so no part may
/// change a row another part changes or read what another part writes, except through a named part's
/// `RETURNING` rows, which later parts may select by its name.
public struct StatementGroup: Sendable {
    struct Part: Sendable {
        let name: String?
        let sql: SQLQueryString
    }

    private var parts: [Part] = []

    public init() {}

    public var isEmpty: Bool { parts.isEmpty }

    /// Adds a statement; `name` (PostgreSQL) lets later parts select its `RETURNING` rows.
    public mutating func append(_ sql: SQLQueryString, as name: String? = nil) {
        parts.append(Part(name: name, sql: sql))
    }

    public func run(_ kind: DialectKind, on db: any SQLDatabase) async throws {
        if kind == .sqlite || parts.count == 1 {
            for part in parts { try await db.raw(part.sql).run() }
            return
        }
        guard !parts.isEmpty else { return }
        let ctes = parts.enumerated().map { i, part in SQLQueryString(part.name ?? "w\(i)") + " AS (" + part.sql + ")" }
        try await db.raw("WITH " + ctes.joined(separator: ", ") + " SELECT 1").run()
    }
}
