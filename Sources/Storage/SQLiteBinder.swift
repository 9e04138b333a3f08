import VaporCSQLite
import SQLiteNIO

/// Binds one row's values, in order, to a kept statement's placeholders (see `StatementGroup.appendEach`):
/// typed values straight from the caller's rows, with no array of values built for each row.
public struct SQLiteBinder {
    let statement: OpaquePointer
    var index: Int32
    /// The first failed bind's status (SQLITE_OK while none failed).
    var status: Int32 = SQLITE_OK

    init(statement: OpaquePointer, first: Int32) {
        self.statement = statement
        self.index = first
    }

    public mutating func bind(_ value: Int64) {
        record(sqlite_nio_sqlite3_bind_int64(statement, index, value))
    }

    public mutating func bind(_ value: Double?) {
        guard let value else { return bindNull() }
        record(sqlite_nio_sqlite3_bind_double(statement, index, value))
    }

    public mutating func bind(_ value: String?) {
        guard let value else { return bindNull() }
        record(sqlite_nio_sqlite3_bind_text64(statement, index, value, UInt64(value.utf8.count), Self.transient, UInt8(SQLITE_UTF8)))
    }

    private mutating func bindNull() {
        record(sqlite_nio_sqlite3_bind_null(statement, index))
    }

    private mutating func record(_ result: Int32) {
        if status == SQLITE_OK, result != SQLITE_OK { status = result }
        index += 1
    }

    /// SQLite's marker for "copy this buffer now" (also the connection's binds use it).
    static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}
