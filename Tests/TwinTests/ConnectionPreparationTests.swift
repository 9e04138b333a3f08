import Foundation
import SQLKit
import Storage
import Testing

@testable import Twin

/// PostgreSQL: every pooled connection runs the statements registered with `prepareEachConnection` once,
/// before its first use; one that fails does not fail the work and is tried again at later leases; and the
/// store's own statements (PostGIS set up on a new backend) run on a migrated database.
@Suite struct ConnectionPreparationTests {
    /// The backends with a pool: PostgreSQL when the test command started one.
    static let kinds = TestDatabases.kinds.filter { $0 == .postgres }

    struct Session: Decodable, Sendable {
        let name: String
        let pid: Int
    }

    /// What several reads held at once see of their connections' sessions.
    static func sessions(_ database: Database, count: Int) async throws -> [Session] {
        try await withThrowingTaskGroup(of: Session.self) { group in
            for _ in 0..<count {
                group.addTask {
                    try await database.read { db in
                        // Held a while, so that the reads need connections of their own.
                        try await db.raw("SELECT pg_sleep(0.05)").run()
                        return try await db.raw("SELECT current_setting('application_name') AS name, pg_backend_pid() AS pid").first(decoding: Session.self)!
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    @Test(arguments: kinds)
    func everyConnectionRunsThemOnceBeforeItsFirstUse(_ kind: DialectKind) async throws {
        try await TestDatabases.with(kind, migrations: TwinMigrations.all) { database, _ in
            // given a statement that sets what each session reports
            database.prepareEachConnection("SET application_name = 'citytwin-prepared'")
            // when four reads run at once
            let sessions = try await Self.sessions(database, count: 4)
            // then each ran on a prepared connection, and more than one connection was used
            #expect(sessions.map(\.name) == Array(repeating: "citytwin-prepared", count: 4))
            #expect(Set(sessions.map(\.pid)).count > 1)
            // and a write's connection is prepared too
            let written = try await database.write { db in
                try await db.raw("SELECT current_setting('application_name') AS name, pg_backend_pid() AS pid").first(decoding: Session.self)!
            }
            #expect(written.name == "citytwin-prepared")
        }
    }

    @Test(arguments: kinds)
    func aFailedStatementIsTriedAgainLaterAndTheWorkStillRuns(_ kind: DialectKind) async throws {
        try await TestDatabases.with(kind, migrations: TwinMigrations.all) { database, _ in
            // given a statement on a table not made yet, and one after it
            database.prepareEachConnection("SELECT 1 FROM made_later LIMIT 1")
            database.prepareEachConnection("SET application_name = 'after-made-later'")
            // when reads run before the table exists: they succeed, the statement after the failed one waits
            let before = try await Self.sessions(database, count: 2)
            #expect(before.allSatisfy { $0.name != "after-made-later" })
            // and once it exists, the next leases run both
            try await database.withWriterConnection { db in try await db.raw("CREATE TABLE made_later (x INTEGER)").run() }
            let after = try await Self.sessions(database, count: 2)
            #expect(after.map(\.name) == ["after-made-later", "after-made-later"])
        }
    }

    @Test(arguments: kinds)
    func theStoresPostGISStatementsRunOnAMigratedDatabase(_ kind: DialectKind) async throws {
        try await TestDatabases.with(kind, migrations: TwinMigrations.all) { database, _ in
            for sql in GeoIndex.postgresPreparation {
                try await database.read { db in try await db.raw(SQLQueryString(sql)).run() }
            }
        }
    }
}
