import NIOCore
import SQLiteNIO

/// A boolean SQLite function of a blob and a text: `name(blob, text)` is 1 when `test` holds, else 0
/// (also for NULL or mistyped arguments).
public struct SQLitePredicate: Sendable {
    public let name: String
    public let test: @Sendable (UnsafeRawBufferPointer, String) -> Bool

    public init(name: String, test: @escaping @Sendable (UnsafeRawBufferPointer, String) -> Bool) {
        self.name = name
        self.test = test
    }

    var function: SQLiteScalarFunction {
        let test = self.test
        return SQLiteScalarFunction(name: name, argumentCount: 2) { args in
            guard case .blob(let buffer) = args[0], case .text(let text) = args[1] else { return 0 }
            return buffer.withUnsafeReadableBytes { test($0, text) } ? 1 : 0
        }
    }
}
