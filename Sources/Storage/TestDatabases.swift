import Foundation
import Logging
import SQLKit

/// Test support: every store test runs on SQLite and on PostgreSQL.
///
/// PostgreSQL comes from `CITYTWIN_TEST_POSTGRES_URL` (the test command starts a server and sets it);
/// each test gets a fresh database of its own, dropped afterwards.
public enum TestDatabases {
    public static var postgresURL: String? {
        ProcessInfo.processInfo.environment["CITYTWIN_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The backends tests run on: both when PostgreSQL is configured. In CI (`CI` set) a missing
    /// PostgreSQL is an error, not a silent skip.
    public static var kinds: [DialectKind] {
        if postgresURL != nil { return [.sqlite, .postgres] }
        if ProcessInfo.processInfo.environment["CI"] != nil {
            fatalError("CITYTWIN_TEST_POSTGRES_URL is not set: the test command starts PostgreSQL and sets it")
        }
        return [.sqlite]
    }

    /// Makes a fresh, empty database of `kind`, migrated with `migrations`, runs `body`, then removes it.
    public static func with<R: Sendable>(
        _ kind: DialectKind, migrations: [Migration], _ body: @Sendable (Database, Backend) async throws -> R
    ) async throws -> R {
        let logger = Logger(label: "citytwin.test")
        let backend: Backend
        var cleanup: @Sendable () async throws -> Void = {}
        switch kind {
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            backend = .sqlite(path: dir.appendingPathComponent("twin.sqlite").path)
            cleanup = { try? FileManager.default.removeItem(at: dir) }
        case .postgres:
            guard let url = postgresURL else { throw StorageError.invalidURL("CITYTWIN_TEST_POSTGRES_URL is not set") }
            let admin = try PostgresLocation(url: url)
            let name = "citytwin_test_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased())"
            try await withAdmin(admin) { db in try await db.raw("CREATE DATABASE \(unsafeRaw: name)").run() }
            backend = .postgres(admin.with(database: name))
            cleanup = {
                try await withAdmin(admin) { db in try await db.raw("DROP DATABASE IF EXISTS \(unsafeRaw: name) WITH (FORCE)").run() }
            }
        }
        let database = try await Database.open(backend, logger: logger)
        do {
            let result = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.run() }
                defer { group.cancelAll() }
                try await Migrator(migrations).run(on: database)
                return try await body(database, backend)
            }
            await database.close()
            try await cleanup()
            return result
        } catch {
            await database.close()
            try? await cleanup()
            throw error
        }
    }

    /// Creates an empty PostgreSQL database for a test that starts its own server process.
    public static func makePostgresDatabase() async throws -> String {
        guard let url = postgresURL else { throw StorageError.invalidURL("CITYTWIN_TEST_POSTGRES_URL is not set") }
        let admin = try PostgresLocation(url: url)
        let name = "citytwin_test_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased())"
        try await withAdmin(admin) { db in try await db.raw("CREATE DATABASE \(unsafeRaw: name)").run() }
        let location = admin.with(database: name)
        return "postgres://\(location.username)\(location.password.map { ":" + $0 } ?? "")@\(location.host):\(location.port)/\(name)"
    }

    private static func withAdmin(_ location: PostgresLocation, _ body: @escaping @Sendable (any SQLDatabase) async throws -> Void) async throws {
        let db = try await Database.open(.postgres(location), logger: Logger(label: "citytwin.test.admin"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await db.run() }
            defer { group.cancelAll() }
            try await db.withWriterConnection(body)
        }
    }
}
