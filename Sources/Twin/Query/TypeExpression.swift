import Foundation

/// An entity type selector: `A,B` or `A|B` (either), `A;B` (both), with parentheses.
public indirect enum TypeExpression: Sendable, Equatable {
    case name(String)
    case and([TypeExpression])
    case or([TypeExpression])

    public static func parse(_ text: String) throws(NGSIError) -> TypeExpression {
        var parser = Parser(chars: Array(text))
        let result = try parser.or(depth: 0)
        guard parser.index == parser.chars.count else { throw .badData("invalid type expression \(text)") }
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

    private struct Parser {
        let chars: [Character]
        var index = 0

        mutating func or(depth: Int) throws(NGSIError) -> TypeExpression {
            var items = [try and(depth: depth)]
            while index < chars.count, chars[index] == "," || chars[index] == "|" {
                index += 1
                items.append(try and(depth: depth))
            }
            return items.count == 1 ? items[0] : .or(items)
        }

        mutating func and(depth: Int) throws(NGSIError) -> TypeExpression {
            var items = [try primary(depth: depth)]
            while index < chars.count, chars[index] == ";" {
                index += 1
                items.append(try primary(depth: depth))
            }
            return items.count == 1 ? items[0] : .and(items)
        }

        mutating func primary(depth: Int) throws(NGSIError) -> TypeExpression {
            guard depth < 8 else { throw NGSIError(.tooComplexQuery, "the type expression nests too deeply") }
            if index < chars.count, chars[index] == "(" {
                index += 1
                let inner = try or(depth: depth + 1)
                guard index < chars.count, chars[index] == ")" else { throw .badData("missing ')' in the type expression") }
                index += 1
                return inner
            }
            let start = index
            while index < chars.count, !",|;()".contains(chars[index]) { index += 1 }
            let name = String(chars[start..<index]).trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, EntityInput.isValidName(name) else { throw .badData("invalid entity type name in the type expression") }
            return .name(name)
        }
    }
}
