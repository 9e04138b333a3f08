import CityKit
import Foundation
import NIOCore
import SQLKit
import Storage
import Testing

/// SQLite's writer runs statements through the C API and keeps them prepared: what it writes and reads
/// back is what the readers see, a failed statement leaves the connection usable, and more distinct
/// statements than it keeps still run correctly.
@Suite struct SQLiteWriterTests {
    struct Stored: Decodable, Equatable {
        let name: String
        let count: Int64
        let ratio: Double
        let data: Data
        let note: String?
    }

    func withDatabase(_ body: (Database) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-writer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let database = try await Database.open(.sqlite(path: dir.appendingPathComponent("w.sqlite").path))
        do {
            try await database.withWriterConnection { db in
                try await db.raw("CREATE TABLE t (name TEXT PRIMARY KEY, count INTEGER, ratio REAL, data BLOB, note TEXT)").run()
            }
            try await body(database)
        } catch {
            await database.close()
            throw error
        }
        await database.close()
    }

    @Test func valuesRoundTripAndAFailedStatementLeavesTheWriterUsable() async throws {
        try await withDatabase { database in
            // given a row of every storage class, Chinese text among them
            let written = try await database.write { db in
                try await db.raw("INSERT INTO t VALUES (\(bind: "福田区"), \(bind: Int64.max), \(bind: 0.1), \(bind: Data([0, 255, 7])), NULL) RETURNING *")
                    .first(decoding: Stored.self)
            }
            #expect(written == Stored(name: "福田区", count: .max, ratio: 0.1, data: Data([0, 255, 7]), note: nil))

            // when the same statement breaks the primary key, then it fails alone with SQLite's reason
            await #expect { try await database.write { db in
                try await db.raw("INSERT INTO t VALUES (\(bind: "福田区"), \(bind: Int64(1)), \(bind: 0.5), \(bind: Data()), \(bind: "x")) RETURNING *").run()
            } } throws: { "\($0)".contains("UNIQUE") }

            // and the kept statement runs again with other values
            try await database.write { db in
                try await db.raw("INSERT INTO t VALUES (\(bind: "南山区"), \(bind: Int64(-3)), \(bind: 2.5), \(bind: Data([1])), \(bind: "备注")) RETURNING *").run()
            }
            let read = try await database.read { db in try await db.raw("SELECT * FROM t ORDER BY count").all(decoding: Stored.self) }
            #expect(read == [
                Stored(name: "南山区", count: -3, ratio: 2.5, data: Data([1]), note: "备注"),
                Stored(name: "福田区", count: .max, ratio: 0.1, data: Data([0, 255, 7]), note: nil),
            ])
        }
    }

    @Test func moreDistinctStatementsThanKeptStillAnswerCorrectly() async throws {
        try await withDatabase { database in
            let answers = try await database.write { db in
                var answers: [Int] = []
                for round in 0..<2 {
                    for n in 0..<300 {
                        let sql = "SELECT \(n) + \(round * 1000) AS v"
                        answers.append(try await db.raw(SQLQueryString(sql)).first()!.decode(column: "v", as: Int.self))
                    }
                }
                return answers
            }
            #expect(answers == (0..<300).map { $0 } + (0..<300).map { $0 + 1000 })
        }
    }

    @Test func theWriterHasTheRegexpFunction() async throws {
        try await withDatabase { database in
            let matches = try await database.write { db in
                try await db.raw("SELECT regexp(\(bind: "^福.区$"), \(bind: "福田区")) AS a, regexp(\(bind: "^南"), \(bind: "福田区")) AS b").first()
                    .map { [try $0.decode(column: "a", as: Int.self), try $0.decode(column: "b", as: Int.self)] }
            }
            #expect(matches == [1, 0])
            await #expect(throws: (any Error).self) {
                try await database.write { db in try await db.raw("SELECT regexp(\(bind: "("), \(bind: "x")) AS a").run() }
            }
        }
    }

    /// Rows bound one by one to one kept statement: JSON values land as SQLite's storage classes, and a row
    /// that breaks a constraint fails its whole write (the rows before it are undone with it).
    @Test func rowsBoundOneByOne() async throws {
        try await withDatabase { database in
            try await database.write { db in
                var statements = StatementGroup(.sqlite, on: db)
                try await statements.appendEach(
                    "INSERT INTO t (name, count, ratio, note) VALUES (?, ?, ?, ?)", prefix: [.string("南山区")], rows: [[.integer(7), .double(0.25), .null]])
                try await statements.appendEach("INSERT INTO t (name, count, ratio, note) VALUES (?, ?, ?, ?)", rows: [
                    [.string("宝安区"), .bool(true), .integer(3), ["district": "宝安区"]],
                ])
            }
            let rows = try await database.read { db in
                try await db.raw("SELECT name, count, typeof(ratio) AS r, note FROM t ORDER BY name").all().map {
                    [try $0.decode(column: "name", as: String.self), "\(try $0.decode(column: "count", as: Int.self))", try $0.decode(column: "r", as: String.self),
                     try $0.decode(column: "note", as: String?.self) ?? "NULL"]
                }
            }
            #expect(rows == [["南山区", "7", "real", "NULL"], ["宝安区", "1", "real", #"{"district":"宝安区"}"#]])
            await #expect(throws: (any Error).self) {
                try await database.write { db in
                    var statements = StatementGroup(.sqlite, on: db)
                    try await statements.appendEach("INSERT INTO t (name, count) VALUES (?, ?)", rows: [[.string("罗湖区"), .integer(1)], [.string("南山区"), .integer(2)]])
                }
            }
            let names = try await database.read { db in try await db.raw("SELECT name FROM t ORDER BY name").all().map { try $0.decode(column: "name", as: String.self) } }
            #expect(names == ["南山区", "宝安区"])
        }
    }
}
