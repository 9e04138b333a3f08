import CityKit
import CSQLiteOptions
import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import SQLiteNIO
import Synchronization
import VaporCSQLite

/// An SQLite connection driven through the C API, keeping its prepared statements: the writer, the
/// connections that look entities up by key, and those that run queries.
///
/// SQLiteNIO hands every statement to a thread pool and back; a group transaction of hundreds of short
/// statements, or a lookup of one row, spent most of its time in those hand-offs. The writer and the
/// lookups run each statement where it is called and send only `COMMIT` (which writes the transaction's
/// pages to the log, and now and then checkpoints it) to the I/O thread pool. A connection opened
/// `offloaded` (queries, which may scan) runs every statement on that pool, so a long read never holds a
/// concurrency thread. It is the same SQLite library SQLiteNIO links (one copy in the process, so file
/// locks stay coherent).
final class SQLiteInlineConnection: SQLDatabase {
    /// The connection (nil once closed) and its prepared statements. Unchecked: it lives in the mutex
    /// below and SQLite's handles are only touched while holding it.
    private struct Connection: @unchecked Sendable {
        var handle: OpaquePointer?
        var statements: [String: OpaquePointer] = [:]
        var order: [String] = []
    }

    private let connection: Mutex<Connection>
    /// Every statement runs on the I/O thread pool, not on the caller's thread.
    private let offloaded: Bool
    let logger: Logger
    let eventLoop: any EventLoop
    var dialect: any SQLDialect { SQLiteDialect() }
    var queryLogLevel: Logger.Level? { .debug }
    private let encoder = SQLiteDataEncoder()
    private let decoder = SQLiteDataDecoder()
    /// The most prepared statements kept; the oldest is finalized past it.
    static let keptStatements = 256

    private init(handle: OpaquePointer, offloaded: Bool, logger: Logger) {
        self.connection = Mutex(Connection(handle: handle))
        self.offloaded = offloaded
        self.logger = logger
        self.eventLoop = MultiThreadedEventLoopGroup.singleton.any()
    }

    /// Opens (creating if needed) the file at `path`. Another SQLiteNIO connection must have been opened
    /// first, so that the library is initialised. `keepPlans`: a kept statement keeps its query plan whatever
    /// is bound (for the writer's and lookups' statements, whose plans never depend on the values).
    static func open(path: String, offloaded: Bool = false, keepPlans: Bool = true, logger: Logger) throws -> SQLiteInlineConnection {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_EXRESCODE
        let status = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard status == SQLITE_OK, let handle else {
            let message = handle.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "cannot open"
            if let handle { sqlite_nio_sqlite3_close(handle) }
            throw SQLiteInlineError(code: status, message: "\(message) (\(path))")
        }
        // Kept statements are bound anew for every use; without this SQLite prepares some of them again each time.
        let keep = keepPlans ? citytwin_sqlite_keep_plans(UnsafeMutableRawPointer(handle)) : SQLITE_OK
        guard keep == SQLITE_OK else {
            sqlite_nio_sqlite3_close(handle)
            throw SQLiteInlineError(code: keep, message: "cannot keep query plans (\(path))")
        }
        return SQLiteInlineConnection(handle: handle, offloaded: offloaded, logger: logger)
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        if offloaded {
            let (sql, binds) = serialize(query)
            return NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) { [self] in
                try run(sql: sql, binds: binds.map { try encoder.encode($0) }, onRow)
            }
        }
        do {
            try run(query, onRow)
            return eventLoop.makeSucceededVoidFuture()
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        let (sql, binds) = serialize(query)
        if offloaded {
            let values = try binds.map { try encoder.encode($0) }
            try await NIOThreadPool.singleton.runIfActive { try self.run(sql: sql, binds: values, onRow) }
            return
        }
        if sql == "COMMIT" {
            // The commit writes the log (megabytes for a large batch): wait for it on the I/O pool, not on a
            // concurrency thread.
            try await NIOThreadPool.singleton.runIfActive { try self.run(sql: sql, binds: [], onRow) }
            return
        }
        try run(sql: sql, binds: binds.map { try encoder.encode($0) }, onRow)
    }

    private func run(_ query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) throws {
        let (sql, binds) = serialize(query)
        try run(sql: sql, binds: binds.map { try encoder.encode($0) }, onRow)
    }

    private func run(sql: String, binds: [SQLiteData], _ onRow: (any SQLRow) -> ()) throws {
        if let level = queryLogLevel, logger.logLevel <= level {
            logger.log(level: level, "Executing query", metadata: ["sql": .string(sql)])
        }
        try withStatement(sql) { statement, handle in
            for (index, value) in binds.enumerated() {
                try Self.check(Self.bind(value, at: Int32(index + 1), to: statement), handle)
            }
            var columns: SQLiteInlineRow.Columns?
            while true {
                let status = sqlite_nio_sqlite3_step(statement)
                if status == SQLITE_DONE { return }
                guard status == SQLITE_ROW else { throw Self.error(status, handle) }
                if columns == nil { columns = SQLiteInlineRow.Columns(statement) }
                onRow(SQLiteInlineRow(columns: columns!, values: SQLiteInlineRow.values(of: statement, count: columns!.names.count), decoder: decoder))
            }
        }
    }

    /// Runs `sql` once per row: `prefix` and then the row's values bound to its placeholders in order.
    func runEach(sql: String, prefix: [JSON], rows: [[JSON]]) throws {
        if let level = queryLogLevel, logger.logLevel <= level {
            logger.log(level: level, "Executing query for each row", metadata: ["sql": .string(sql), "rows": "\(rows.count)"])
        }
        try withStatement(sql) { statement, handle in
            // The prefix stays bound: clearing happens only once all rows are done.
            for (i, value) in prefix.enumerated() { try Self.check(Self.bind(value, at: Int32(i + 1), to: statement), handle) }
            let first = Int32(prefix.count + 1)
            for row in rows {
                for (i, value) in row.enumerated() { try Self.check(Self.bind(value, at: first + Int32(i), to: statement), handle) }
                let status = sqlite_nio_sqlite3_step(statement)
                guard status == SQLITE_DONE || status == SQLITE_ROW else { throw Self.error(status, handle) }
                sqlite_nio_sqlite3_reset(statement)
            }
        }
    }

    /// Runs `sql` once for each of `count` rows, `bind` giving row n's values for its placeholders in order;
    /// `returned`, if given, receives n and the first column of what the statement returned for it.
    func runEach(sql: String, count: Int, bind: (Int, inout SQLiteBinder) -> Void, returned: ((Int, Int64) -> Void)? = nil) throws {
        if let level = queryLogLevel, logger.logLevel <= level {
            logger.log(level: level, "Executing query for each row", metadata: ["sql": .string(sql), "rows": "\(count)"])
        }
        try withStatement(sql) { statement, handle in
            for n in 0..<count {
                var binder = SQLiteBinder(statement: statement, first: 1)
                bind(n, &binder)
                try Self.check(binder.status, handle)
                let status = sqlite_nio_sqlite3_step(statement)
                if status == SQLITE_ROW, let returned {
                    returned(n, sqlite_nio_sqlite3_column_int64(statement, 0))
                } else if status != SQLITE_DONE && status != SQLITE_ROW {
                    throw Self.error(status, handle)
                }
                sqlite_nio_sqlite3_reset(statement)
            }
        }
    }

    /// Runs `body` with the kept statement for `sql` while holding the connection; the statement is reset
    /// and its bindings cleared afterwards.
    private func withStatement(_ sql: String, _ body: (OpaquePointer, OpaquePointer) throws -> Void) throws {
        try connection.withLock { connection in
            guard let handle = connection.handle else { throw StorageError.closed }
            let statement = try Self.statement(for: sql, on: handle, in: &connection)
            defer {
                sqlite_nio_sqlite3_reset(statement)
                sqlite_nio_sqlite3_clear_bindings(statement)
            }
            try body(statement, handle)
        }
    }

    /// The kept prepared statement for `sql`, preparing it on first use.
    private static func statement(for sql: String, on handle: OpaquePointer, in connection: inout Connection) throws -> OpaquePointer {
        if let kept = connection.statements[sql] { return kept }
        var statement: OpaquePointer?
        let status = sqlite_nio_sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard status == SQLITE_OK, let statement else {
            if let statement { sqlite_nio_sqlite3_finalize(statement) }
            throw error(status, handle)
        }
        if connection.order.count >= keptStatements {
            let oldest = connection.order.removeFirst()
            if let old = connection.statements.removeValue(forKey: oldest) { sqlite_nio_sqlite3_finalize(old) }
        }
        connection.statements[sql] = statement
        connection.order.append(sql)
        return statement
    }

    private static func bind(_ value: SQLiteData, at index: Int32, to statement: OpaquePointer) -> Int32 {
        switch value {
        case .blob(let buffer):
            buffer.withUnsafeReadableBytes {
                sqlite_nio_sqlite3_bind_blob64(statement, index, $0.baseAddress, UInt64($0.count), SQLiteBinder.transient)
            }
        case .float(let number):
            sqlite_nio_sqlite3_bind_double(statement, index, number)
        case .integer(let number):
            sqlite_nio_sqlite3_bind_int64(statement, index, Int64(number))
        case .null:
            sqlite_nio_sqlite3_bind_null(statement, index)
        case .text(let text):
            sqlite_nio_sqlite3_bind_text64(statement, index, text, UInt64(text.utf8.count), SQLiteBinder.transient, UInt8(SQLITE_UTF8))
        }
    }

    /// A JSON value as SQLite stores it: strings as text, numbers as they are, booleans as 0 or 1, arrays and
    /// objects as their JSON text.
    private static func bind(_ value: JSON, at index: Int32, to statement: OpaquePointer) -> Int32 {
        switch value {
        case .null: sqlite_nio_sqlite3_bind_null(statement, index)
        case .bool(let b): sqlite_nio_sqlite3_bind_int64(statement, index, b ? 1 : 0)
        case .integer(let i): sqlite_nio_sqlite3_bind_int64(statement, index, i)
        case .double(let d): sqlite_nio_sqlite3_bind_double(statement, index, d)
        case .string(let text): sqlite_nio_sqlite3_bind_text64(statement, index, text, UInt64(text.utf8.count), SQLiteBinder.transient, UInt8(SQLITE_UTF8))
        case .array, .object:
            bind(.string(JSONCoding.string(value)), at: index, to: statement)
        }
    }

    private static func check(_ status: Int32, _ handle: OpaquePointer) throws {
        guard status == SQLITE_OK else { throw error(status, handle) }
    }

    private static func error(_ status: Int32, _ handle: OpaquePointer) -> SQLiteInlineError {
        SQLiteInlineError(code: status, message: String(cString: sqlite_nio_sqlite3_errmsg(handle)))
    }

    /// Adds `function` to this connection.
    func install(_ function: SQLiteScalarFunction) throws {
        try connection.withLock { connection in
            guard let handle = connection.handle else { throw StorageError.closed }
            try Self.check(function.install(on: handle), handle)
        }
    }

    /// Adds `predicate` to this connection.
    func install(_ predicate: SQLitePredicate) throws {
        try connection.withLock { connection in
            guard let handle = connection.handle else { throw StorageError.closed }
            try Self.check(predicate.install(on: handle), handle)
        }
    }

    func close() {
        connection.withLock { connection in
            guard let handle = connection.handle else { return }
            for statement in connection.statements.values { sqlite_nio_sqlite3_finalize(statement) }
            connection = Connection()
            sqlite_nio_sqlite3_close_v2(handle)
        }
    }
}

/// A failed SQLite call on an inline connection: SQLite's extended result code and message.
public struct SQLiteInlineError: Error, CustomStringConvertible {
    public let code: Int32
    public let message: String
    public var description: String { "SQLite error \(code): \(message)" }
}
