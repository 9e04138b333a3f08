import Foundation

/// A configuration file: `key = value` lines in TOML's syntax (bare keys named like the flags, strings in
/// double or single quotes, integers, booleans, `#` comments), read by `citytwin --config FILE`.
///
/// Tables, arrays and dates are not part of it; a line that is not `key = value` is an error that names
/// its line, and so is a key given twice.
public struct ConfigurationFile: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case string(String)
        case integer(Int)
        case boolean(Bool)

        /// The value as a flag would give it.
        public var text: String {
            switch self {
            case .string(let s): s
            case .integer(let n): String(n)
            case .boolean(let b): b ? "true" : "false"
            }
        }
    }

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    public private(set) var values: [String: Value] = [:]

    public init(values: [String: Value] = [:]) { self.values = values }

    public subscript(key: String) -> Value? { values[key] }

    /// Reads and parses the file at `path`.
    public static func load(path: String) throws -> ConfigurationFile {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let text = String(data: data, encoding: .utf8) else { throw ParseError(line: 0, message: "the file is not UTF-8") }
        return try parse(text)
    }

    public static func parse(_ text: String) throws -> ConfigurationFile {
        var file = ConfigurationFile()
        // "\r\n" is one Character in Swift: both end a line.
        for (offset, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let line = offset + 1
            let trimmed = raw.drop { $0 == " " || $0 == "\t" }
            if trimmed.isEmpty || trimmed.first == "#" { continue }
            let key = trimmed.prefix { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
            guard !key.isEmpty, key.allSatisfy(\.isASCII) else { throw ParseError(line: line, message: "expected key = value") }
            var rest = trimmed.dropFirst(key.count).drop { $0 == " " || $0 == "\t" }
            guard rest.first == "=" else { throw ParseError(line: line, message: "expected = after \(key)") }
            rest = rest.dropFirst().drop { $0 == " " || $0 == "\t" }
            let (value, after) = try parseValue(rest, line: line)
            let trailing = after.drop { $0 == " " || $0 == "\t" }
            guard trailing.isEmpty || trailing.first == "#" else { throw ParseError(line: line, message: "unexpected text after the value of \(key)") }
            guard file.values[String(key)] == nil else { throw ParseError(line: line, message: "\(key) is given twice") }
            file.values[String(key)] = value
        }
        return file
    }

    private static func parseValue(_ text: Substring, line: Int) throws -> (Value, Substring) {
        guard let first = text.first else { throw ParseError(line: line, message: "a value is missing") }
        switch first {
        case "\"": return try parseBasicString(text.dropFirst(), line: line)
        case "'":
            let body = text.dropFirst()
            guard let end = body.firstIndex(of: "'") else { throw ParseError(line: line, message: "unterminated string") }
            return (.string(String(body[..<end])), body[body.index(after: end)...])
        default:
            let word = text.prefix { !($0 == " " || $0 == "\t" || $0 == "#") }
            let rest = text.dropFirst(word.count)
            if word == "true" { return (.boolean(true), rest) }
            if word == "false" { return (.boolean(false), rest) }
            let digits = word.replacingOccurrences(of: "_", with: "")
            if let n = Int(digits), !word.hasPrefix("_"), !word.hasSuffix("_") { return (.integer(n), rest) }
            throw ParseError(line: line, message: "\(word) is not a string, an integer or a boolean (quote strings)")
        }
    }

    private static func parseBasicString(_ text: Substring, line: Int) throws -> (Value, Substring) {
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            let c = text[index]
            index = text.index(after: index)
            switch c {
            case "\"": return (.string(result), text[index...])
            case "\\":
                guard index < text.endIndex else { break }
                let escape = text[index]
                index = text.index(after: index)
                switch escape {
                case "\"": result.append("\"")
                case "\\": result.append("\\")
                case "n": result.append("\n")
                case "t": result.append("\t")
                case "r": result.append("\r")
                case "u", "U":
                    let length = escape == "u" ? 4 : 8
                    let hex = text[index...].prefix(length)
                    guard hex.count == length, let scalar = UInt32(hex, radix: 16).flatMap(Unicode.Scalar.init) else {
                        throw ParseError(line: line, message: "bad \\\(escape) escape")
                    }
                    result.unicodeScalars.append(scalar)
                    index = text.index(index, offsetBy: length)
                default: throw ParseError(line: line, message: "unknown escape \\\(escape)")
                }
            default: result.append(c)
            }
        }
        throw ParseError(line: line, message: "unterminated string")
    }
}
