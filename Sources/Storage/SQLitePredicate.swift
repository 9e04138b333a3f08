import VaporCSQLite

/// A boolean SQLite function of a blob and a text: `name(blob, text)` is 1 when the test holds, else 0
/// (also for NULL or mistyped arguments).
///
/// The text says what to test for (e.g. a geo-query) and is the same for every row of a statement, so it is
/// prepared once per statement: `prepare` turns it into the test, which SQLite keeps with the statement's
/// argument (its auxiliary data) while the text stays the same.
public struct SQLitePredicate: Sendable {
    public typealias Test = @Sendable (UnsafeRawBufferPointer) -> Bool
    public let name: String
    /// The test for a text; nil when the text is not valid (the predicate is then false).
    public let prepare: @Sendable (String) -> Test?

    public init(name: String, prepare: @escaping @Sendable (String) -> Test?) {
        self.name = name
        self.prepare = prepare
    }

    /// Registers the function on a raw connection; SQLite's result code.
    func install(on handle: OpaquePointer) -> Int32 {
        let box = Unmanaged.passRetained(Prepare(prepare)).toOpaque()
        return sqlite_nio_sqlite3_create_function_v2(
            handle, name, 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, box,
            { context, count, arguments in
                guard count == 2, let arguments, let blob = arguments[0], let text = arguments[1],
                    sqlite_nio_sqlite3_value_type(blob) == SQLITE_BLOB, sqlite_nio_sqlite3_value_type(text) == SQLITE_TEXT
                else {
                    sqlite_nio_sqlite3_result_int64(context, 0)
                    return
                }
                let prepared: Prepared
                if let kept = sqlite_nio_sqlite3_get_auxdata(context, 1) {
                    prepared = Unmanaged<Prepared>.fromOpaque(kept).takeUnretainedValue()
                } else {
                    let prepare = Unmanaged<Prepare>.fromOpaque(sqlite_nio_sqlite3_user_data(context)).takeUnretainedValue().prepare
                    let bytes = sqlite_nio_sqlite3_value_text(text)
                    let key = String(decoding: UnsafeBufferPointer(start: bytes, count: Int(sqlite_nio_sqlite3_value_bytes(text))), as: UTF8.self)
                    prepared = Prepared(prepare(key))
                    // SQLite may release it at once (when the text is not constant); `prepared` holds it for this call.
                    sqlite_nio_sqlite3_set_auxdata(context, 1, Unmanaged.passRetained(prepared).toOpaque()) { Unmanaged<Prepared>.fromOpaque($0!).release() }
                }
                let bytes = sqlite_nio_sqlite3_value_blob(blob)
                let holds = prepared.test?(UnsafeRawBufferPointer(start: bytes, count: Int(sqlite_nio_sqlite3_value_bytes(blob)))) ?? false
                sqlite_nio_sqlite3_result_int64(context, holds ? 1 : 0)
            },
            nil, nil,
            { Unmanaged<Prepare>.fromOpaque($0!).release() })
    }

    private final class Prepare: Sendable {
        let prepare: @Sendable (String) -> Test?
        init(_ prepare: @escaping @Sendable (String) -> Test?) { self.prepare = prepare }
    }

    private final class Prepared: Sendable {
        let test: Test?
        init(_ test: Test?) { self.test = test }
    }
}
