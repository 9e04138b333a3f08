import NIOCore
import SQLiteNIO
import VaporCSQLite

/// An SQL function returning an integer, installed through the C API on every SQLite connection
/// (``SQLiteInlineConnection``). A thrown error fails the statement.
struct SQLiteScalarFunction: Sendable {
    let name: String
    let argumentCount: Int32
    let body: @Sendable ([SQLiteData]) throws -> Int

    /// Registers the function on a raw connection; SQLite's result code.
    func install(on handle: OpaquePointer) -> Int32 {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        return sqlite_nio_sqlite3_create_function_v2(
            handle, name, argumentCount, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, box,
            { context, count, arguments in
                let body = Unmanaged<Box>.fromOpaque(sqlite_nio_sqlite3_user_data(context)).takeUnretainedValue().body
                let values = (0..<Int(count)).map { index in arguments.flatMap { $0[index] }.map(SQLiteScalarFunction.data) ?? .null }
                do {
                    sqlite_nio_sqlite3_result_int64(context, Int64(try body(values)))
                } catch {
                    sqlite_nio_sqlite3_result_error(context, "\(error)", -1)
                }
            },
            nil, nil,
            { Unmanaged<Box>.fromOpaque($0!).release() })
    }

    private final class Box: Sendable {
        let body: @Sendable ([SQLiteData]) throws -> Int
        init(_ body: @escaping @Sendable ([SQLiteData]) throws -> Int) { self.body = body }
    }

    private static func data(_ value: OpaquePointer) -> SQLiteData {
        switch sqlite_nio_sqlite3_value_type(value) {
        case SQLITE_INTEGER:
            return .integer(SQLiteInt64(sqlite_nio_sqlite3_value_int64(value)))
        case SQLITE_FLOAT:
            return .float(sqlite_nio_sqlite3_value_double(value))
        case SQLITE_TEXT:
            guard let text = sqlite_nio_sqlite3_value_text(value) else { return .text("") }
            let count = Int(sqlite_nio_sqlite3_value_bytes(value))
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            guard let bytes = sqlite_nio_sqlite3_value_blob(value) else { return .blob(ByteBuffer()) }
            return .blob(ByteBuffer(bytes: UnsafeRawBufferPointer(start: bytes, count: Int(sqlite_nio_sqlite3_value_bytes(value)))))
        default:
            return .null
        }
    }
}
