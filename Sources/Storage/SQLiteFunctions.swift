import Foundation
import SQLiteNIO
import Synchronization

/// SQL functions SQLite lacks and queries need, installed on every connection: `regexp(pattern, text)`.
enum SQLiteFunctions {
    /// Compiled patterns, kept because a query applies one pattern to many rows.
    private static let cache = Mutex<[String: NSRegularExpression]>([:])

    static let regexp = SQLiteScalarFunction(name: "regexp", argumentCount: 2) { args in
        guard case .text(let pattern) = args[0], case .text(let text) = args[1] else { return 0 }
        let regex: NSRegularExpression
        if let cached = cache.withLock({ $0[pattern] }) {
            regex = cached
        } else {
            regex = try NSRegularExpression(pattern: pattern)
            cache.withLock { cache in
                if cache.count > 256 { cache.removeAll() }
                cache[pattern] = regex
            }
        }
        let range = NSRange(text.startIndex..., in: text)
        return regex.firstMatch(in: text, range: range) == nil ? 0 : 1
    }
}
