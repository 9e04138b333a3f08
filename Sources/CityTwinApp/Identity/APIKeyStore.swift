import CityKit
import Crypto
import Foundation
import SQLKit
import Storage

/// API keys for systems and devices, stored as SHA-256 hashes; the key itself is shown once, at creation.
public struct APIKeyStore: Sendable {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    public static let migrations: [Migration] = [
        Migration(id: "identity-0001-api-keys") { _ in
            ["CREATE TABLE api_keys (hash TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, roles TEXT NOT NULL, department TEXT, created_at TEXT NOT NULL)"]
        }
    ]

    static func hash(_ key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Creates a key and returns it; only its hash is kept.
    public func create(name: String, roles: Set<Role>, department: String?) async throws -> String {
        let key = "ct_" + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let hash = Self.hash(key)
        let roleList = roles.map(\.rawValue).sorted().joined(separator: ",")
        try await database.write { db in
            try await db.raw("""
                INSERT INTO api_keys (hash, name, roles, department, created_at)
                VALUES (\(bind: hash), \(bind: name), \(bind: roleList), \(bind: department), \(bind: Timestamp.string(Date())))
                """).run()
        }
        return key
    }

    public func principal(forKey key: String) async throws -> Principal? {
        let hash = Self.hash(key)
        guard let row = try await database.read({ db in try await db.raw("SELECT * FROM api_keys WHERE hash = \(bind: hash)").first() }) else { return nil }
        let roles = (try? Role.parseList(try row.decode(column: "roles", as: String.self))) ?? []
        return Principal(id: try row.decode(column: "name", as: String.self), kind: .system, roles: roles,
                         department: try row.decode(column: "department", as: String?.self))
    }

    public func revoke(name: String) async throws -> Bool {
        try await database.write { db in
            let found = try await db.raw("SELECT name FROM api_keys WHERE name = \(bind: name)").first() != nil
            try await db.raw("DELETE FROM api_keys WHERE name = \(bind: name)").run()
            return found
        }
    }
}
