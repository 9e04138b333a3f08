import CityKit
import Foundation
import SQLKit

/// One versioned schema change, owned by the module whose tables it makes.
public struct Migration: Sendable {
    /// A unique, ordered id such as `twin-0001-entities`.
    public let id: String
    public let statements: @Sendable (DialectKind) -> [String]

    public init(id: String, statements: @escaping @Sendable (DialectKind) -> [String]) {
        self.id = id
        self.statements = statements
    }
}

/// Applies the migrations that have not run yet, in order, each in its own transaction.
public struct Migrator: Sendable {
    public let migrations: [Migration]

    public init(_ migrations: [Migration]) {
        self.migrations = migrations
    }

    /// Returns the ids of the migrations it applied.
    @discardableResult
    public func run(on database: Database) async throws -> [String] {
        let kind = database.kind
        let migrations = self.migrations
        return try await database.write { db in
            if kind == .postgres {
                // Several copies may start at once: one migrates, the others wait.
                try await db.raw("SELECT pg_advisory_xact_lock(4242001)").run()
            }
            try await db.raw("CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)").run()
            let done = Set(try await db.raw("SELECT id FROM schema_migrations").all().map { try $0.decode(column: "id", as: String.self) })
            var applied: [String] = []
            for migration in migrations where !done.contains(migration.id) {
                for statement in migration.statements(kind) {
                    try await db.raw(SQLQueryString(statement)).run()
                }
                try await db.raw("INSERT INTO schema_migrations (id, applied_at) VALUES (\(bind: migration.id), \(bind: Timestamp.string(Date())))").run()
                applied.append(migration.id)
            }
            return applied
        }
    }
}
