import CityKit
import Foundation
import SQLKit
import Storage

/// `ContextStore` in the `jsonld_contexts` table.
public struct SQLContextStore: ContextStore {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    public func save(_ context: StoredContext) async throws {
        try await database.write { db in
            try await db.raw("""
                INSERT INTO jsonld_contexts (id, url, body, kind, created_at)
                VALUES (\(bind: context.id), \(bind: context.url), \(bind: JSONCoding.string(context.document)), \(bind: context.kind.rawValue), \(bind: Timestamp.string(context.createdAt)))
                ON CONFLICT (id) DO UPDATE SET body = excluded.body, kind = excluded.kind
                """).run()
        }
    }

    public func find(url: String) async throws -> StoredContext? {
        try await database.read { db in
            try await db.raw("SELECT * FROM jsonld_contexts WHERE url = \(bind: url)").first().map(Self.decode)
        }
    }

    public func find(id: String) async throws -> StoredContext? {
        try await database.read { db in
            try await db.raw("SELECT * FROM jsonld_contexts WHERE id = \(bind: id)").first().map(Self.decode)
        }
    }

    public func list() async throws -> [StoredContext] {
        try await database.read { db in
            try await db.raw("SELECT * FROM jsonld_contexts ORDER BY created_at, id").all().map(Self.decode)
        }
    }

    public func delete(id: String) async throws -> Bool {
        try await database.write { db in
            let found = try await db.raw("SELECT id FROM jsonld_contexts WHERE id = \(bind: id)").first() != nil
            try await db.raw("DELETE FROM jsonld_contexts WHERE id = \(bind: id)").run()
            return found
        }
    }

    static func decode(_ row: any SQLRow) throws -> StoredContext {
        StoredContext(
            id: try row.decode(column: "id", as: String.self),
            url: try row.decode(column: "url", as: String.self),
            document: try JSONCoding.parse(try row.decode(column: "body", as: String.self)),
            kind: StoredContext.Kind(rawValue: try row.decode(column: "kind", as: String.self)) ?? .cached,
            createdAt: Timestamp.parse(try row.decode(column: "created_at", as: String.self)) ?? Date())
    }
}
