import Foundation

/// An entity type selector: `A,B` or `A|B` (either), `A;B` (both), with parentheses.
public indirect enum TypeExpression: Sendable, Equatable {
    case name(String)
    case and([TypeExpression])
    case or([TypeExpression])

    public static func parse(_ text: String) throws(NGSIError) -> TypeExpression {
        var parser = Parser(bytes: Array(text.utf8))
        let result = try parser.or(depth: 0)
        guard parser.index == parser.bytes.count else { throw .badData("invalid type expression \(text)") }
        return result
    }

    public func mapNames(_ transform: (String) -> String) -> TypeExpression {
        switch self {
        case .name(let n): .name(transform(n))
        case .and(let items): .and(items.map { $0.mapNames(transform) })
        case .or(let items): .or(items.map { $0.mapNames(transform) })
        }
    }

    public var names: [String] {
        switch self {
        case .name(let n): [n]
        case .and(let items), .or(let items): items.flatMap(\.names)
        }
    }

    /// Whether an entity with these types matches.
    public func matches(_ types: [String]) -> Bool {
        switch self {
        case .name(let n): types.contains(n)
        case .and(let items): items.allSatisfy { $0.matches(types) }
        case .or(let items): items.contains { $0.matches(types) }
        }
    }

    /// Reads the expression's UTF-8 bytes: its operators and parentheses are ASCII, and no byte of a
    /// multi-byte character is.
    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        mutating func or(depth: Int) throws(NGSIError) -> TypeExpression {
            var items = [try and(depth: depth)]
            while index < bytes.count, bytes[index] == UInt8(ascii: ",") || bytes[index] == UInt8(ascii: "|") {
                index += 1
                items.append(try and(depth: depth))
            }
            return items.count == 1 ? items[0] : .or(items)
        }

        mutating func and(depth: Int) throws(NGSIError) -> TypeExpression {
            var items = [try primary(depth: depth)]
            while index < bytes.count, bytes[index] == UInt8(ascii: ";") {
                index += 1
                items.append(try primary(depth: depth))
            }
            return items.count == 1 ? items[0] : .and(items)
        }

        mutating func primary(depth: Int) throws(NGSIError) -> TypeExpression {
            guard depth < 8 else { throw NGSIError(.tooComplexQuery, "the type expression nests too deeply") }
            if index < bytes.count, bytes[index] == UInt8(ascii: "(") {
                index += 1
                let inner = try or(depth: depth + 1)
                guard index < bytes.count, bytes[index] == UInt8(ascii: ")") else { throw .badData("missing ')' in the type expression") }
                index += 1
                return inner
            }
            let start = index
            while index < bytes.count, !Self.ends(bytes[index]) { index += 1 }
            let part = bytes[start..<index]
            var name = String(decoding: part, as: UTF8.self)
            // Only a name that starts or ends with a space or a non-ASCII character can have spaces to trim.
            if let first = part.first, let last = part.last, first <= 0x20 || first >= 0x80 || last <= 0x20 || last >= 0x80 {
                name = name.trimmingCharacters(in: .whitespaces)
            }
            guard !name.isEmpty, EntityInput.isValidName(name) else { throw .badData("invalid entity type name in the type expression") }
            return .name(name)
        }

        static func ends(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: ","), UInt8(ascii: "|"), UInt8(ascii: ";"), UInt8(ascii: "("), UInt8(ascii: ")"): true
            default: false
            }
        }
    }
}
