import Foundation
import SQLKit
import Synchronization
import Testing

@testable import Storage

/// A committed SQLite transaction is reported durable only after its log was synced: `Durability` wakes
/// its waiters and followers once, and passes on a refused sync; `WALSync` syncs the log it finds, a new
/// log after SQLite made one, the database file when there is no log, and fails when there is neither.
@Suite struct WALSyncTests {
    @Test func durabilityWakesWaitersOnceAndPassesFailuresOn() async throws {
        let durability = Durability()
        let followed = Mutex(0)
        durability.then { followed.withLock { $0 += 1 } }
        async let waited: Void = durability.wait()
        try await Task.sleep(for: .milliseconds(20))
        #expect(followed.withLock { $0 } == 0)
        durability.complete(.success(()))
        try await waited
        try await durability.wait()
        durability.then { followed.withLock { $0 += 10 } }
        #expect(followed.withLock { $0 } == 11)

        struct Refused: Error {}
        let refused = Durability()
        refused.then { followed.withLock { $0 += 100 } }
        refused.complete(.failure(Refused()))
        await #expect(throws: Refused.self) { try await refused.wait() }
        #expect(followed.withLock { $0 } == 11)
        try await Durability.immediate.wait()
    }

    /// A new directory for the test's files, removed afterwards.
    func withDirectory(_ body: (URL) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("walsync-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await body(directory)
    }

    @Test func syncsTheLogItFindsOrTheDatabaseFile() async throws {
        try await withDirectory { directory in
            let database = directory.appendingPathComponent("twin.sqlite").path
            let log = database + "-wal"
            let sync = WALSync(databasePath: database)

            #expect(FileManager.default.createFile(atPath: log, contents: Data("frames".utf8)))
            try await sync.committed().wait()
            // SQLite made a new log (another inode): that one is synced.
            try FileManager.default.removeItem(atPath: log)
            #expect(FileManager.default.createFile(atPath: log, contents: Data("new frames".utf8)))
            try await sync.committed().wait()
            // Several commits while one sync runs are all answered.
            let many = (0..<50).map { _ in sync.committed() }
            for durability in many { try await durability.wait() }
            // No log: the database file holds everything.
            try FileManager.default.removeItem(atPath: log)
            #expect(FileManager.default.createFile(atPath: database, contents: Data("pages".utf8)))
            try await sync.committed().wait()
            try FileManager.default.removeItem(atPath: database)
            await #expect(throws: WALSyncError.self) { try await sync.committed().wait() }
        }
    }

    @Test func aWriteReturnsDurableAndSeenByReaders() async throws {
        try await withDirectory { directory in
            let database = try await Database.open(.sqlite(path: directory.appendingPathComponent("twin.sqlite").path))
            try await database.write { try await $0.raw("CREATE TABLE readings (n INTEGER NOT NULL)").run() }
            let (_, durability) = try await database.writeCommitted { try await $0.raw("INSERT INTO readings (n) VALUES (1)").run() }
            // Committed: seen before the sync, and the sync completes.
            let seen = try await database.read { try await $0.raw("SELECT COUNT(*) AS c FROM readings").first(decoding: Count.self) }
            #expect(seen?.c == 1)
            try await durability.wait()
            try await database.write { try await $0.raw("INSERT INTO readings (n) VALUES (2)").run() }
            let after = try await database.read { try await $0.raw("SELECT COUNT(*) AS c FROM readings").first(decoding: Count.self) }
            #expect(after?.c == 2)
            await database.close()
        }
    }

    struct Count: Decodable { let c: Int }
}
