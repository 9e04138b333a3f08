import CityKit
import Foundation

/// Parses the NGSI-LD query language (`q`), refusing hostile input with a clear reason.
///
/// `;` (AND) binds tighter than `|` (OR); parentheses group. Limits on length, terms and depth keep a
/// query's cost bounded.
public struct QParser {
    public static let maximumLength = 4096
    public static let maximumTerms = 64
    public static let maximumDepth = 16

    private let chars: [Character]
    private var index = 0
    private var terms = 0

    public static func parse(_ text: String) throws(NGSIError) -> QExpression {
        guard text.count <= maximumLength else { throw NGSIError(.tooComplexQuery, "q is longer than \(maximumLength) characters") }
        var parser = QParser(chars: Array(text))
        let expression = try parser.parseOr(depth: 0)
        parser.skipSpaces()
        guard parser.index == parser.chars.count else { throw parser.fail("unexpected '\(parser.chars[parser.index])'") }
        return expression
    }

    private init(chars: [Character]) { self.chars = chars }

    private func fail(_ message: String) -> NGSIError {
        .badData("invalid q at character \(index + 1): \(message)")
    }

    private var current: Character? { index < chars.count ? chars[index] : nil }

    private mutating func skipSpaces() {
        while let c = current, c == " " { index += 1 }
    }

    private mutating func parseOr(depth: Int) throws(NGSIError) -> QExpression {
        var items = [try parseAnd(depth: depth)]
        skipSpaces()
        while current == "|" {
            index += 1
            items.append(try parseAnd(depth: depth))
            skipSpaces()
        }
        return items.count == 1 ? items[0] : .or(items)
    }

    private mutating func parseAnd(depth: Int) throws(NGSIError) -> QExpression {
        var items = [try parsePrimary(depth: depth)]
        skipSpaces()
        while current == ";" {
            index += 1
            items.append(try parsePrimary(depth: depth))
            skipSpaces()
        }
        return items.count == 1 ? items[0] : .and(items)
    }

    private mutating func parsePrimary(depth: Int) throws(NGSIError) -> QExpression {
        skipSpaces()
        guard depth < Self.maximumDepth else { throw NGSIError(.tooComplexQuery, "q nests parentheses deeper than \(Self.maximumDepth)") }
        if current == "(" {
            index += 1
            let inner = try parseOr(depth: depth + 1)
            skipSpaces()
            guard current == ")" else { throw fail("missing ')'") }
            index += 1
            return inner
        }
        return .term(try parseTerm())
    }

    private mutating func parseTerm() throws(NGSIError) -> QTerm {
        terms += 1
        guard terms <= Self.maximumTerms else { throw NGSIError(.tooComplexQuery, "q has more than \(Self.maximumTerms) terms") }
        var negated = false
        if current == "!" {
            negated = true
            index += 1
        }
        let path = try parsePath()
        skipSpaces()
        guard let op = parseOperator() else {
            return QTerm(path: path, op: nil, value: nil, negated: negated)
        }
        if negated { throw fail("'!' negates an attribute's existence and takes no comparison") }
        skipSpaces()
        let value: QValue
        switch op {
        case .matches, .notMatches:
            value = .string(try parseRegex())
        default:
            value = try parseValueList(allowRangeAndList: op == .equal || op == .unequal)
        }
        return QTerm(path: path, op: op, value: value)
    }

    private mutating func parseOperator() -> QTerm.Operator? {
        let rest = String(chars[index..<min(chars.count, index + 3)])
        for op in [QTerm.Operator.notMatches, .equal, .unequal, .greaterOrEqual, .lessOrEqual, .matches, .greater, .less] where rest.hasPrefix(op.rawValue) {
            index += op.rawValue.count
            return op
        }
        return nil
    }

    private static let nameStops: Set<Character> = ["=", "!", "<", ">", "~", ";", "|", "(", ")", "[", "]", ".", " ", ",", "\""]

    private mutating func parseName() throws(NGSIError) -> String {
        let start = index
        while let c = current, !Self.nameStops.contains(c) || (c == "." && chars[start..<index].contains("/")) { index += 1 }
        guard index > start else { throw fail("expected an attribute name") }
        return String(chars[start..<index])
    }

    private mutating func parsePath() throws(NGSIError) -> QPath {
        var names = [try parseName()]
        // Names may be full IRIs, whose dots belong to them: take `.segment` only when it is a plain name.
        while current == "." {
            index += 1
            names.append(try parseName())
        }
        var path = QPath(attribute: names[0])
        var rest = Array(names.dropFirst())
        if let last = rest.last, QPath.metadataNames.contains(last) {
            path.metadata = last
            rest.removeLast()
        }
        path.subAttributes = rest
        if current == "[" {
            index += 1
            var members = [try parseName()]
            while current == "." {
                index += 1
                members.append(try parseName())
            }
            guard current == "]" else { throw fail("missing ']'") }
            index += 1
            path.compound = members
        }
        return path
    }

    private mutating func parseRegex() throws(NGSIError) -> String {
        let start = index
        var parens = 0
        while let c = current {
            if c == "(" { parens += 1 }
            if c == ")" {
                if parens == 0 { break }
                parens -= 1
            }
            if parens == 0, c == ";" || c == "|" { break }
            index += 1
        }
        var pattern = String(chars[start..<index])
        if pattern.hasPrefix("\""), pattern.hasSuffix("\""), pattern.count >= 2 { pattern = String(pattern.dropFirst().dropLast()) }
        guard !pattern.isEmpty else { throw fail("empty pattern") }
        guard pattern.count <= 256 else { throw NGSIError(.tooComplexQuery, "a q pattern is longer than 256 characters") }
        guard RegexSyntax.isValid(pattern) else { throw fail("\(pattern) is not a valid regular expression") }
        guard PostgresRegex.isExpressible(pattern) else { throw fail("\(pattern) uses \\p, \\k or \\u{…}, which are not supported") }
        return pattern
    }

    private mutating func parseValueList(allowRangeAndList: Bool) throws(NGSIError) -> QValue {
        let first = try parseValue()
        if chars.count - index >= 2, current == ".", chars[index + 1] == "." {
            guard allowRangeAndList else { throw fail("a range needs == or !=") }
            index += 2
            let upper = try parseValue()
            return .range(first, upper)
        }
        if current == "," {
            guard allowRangeAndList else { throw fail("a list needs == or !=") }
            var items = [first]
            while current == "," {
                index += 1
                items.append(try parseValue())
            }
            return .list(items)
        }
        return first
    }

    private mutating func parseValue() throws(NGSIError) -> QValue {
        guard let c = current else { throw fail("expected a value") }
        if c == "\"" || c == "'" {
            let quote = c
            index += 1
            var text = ""
            while let d = current, d != quote {
                if d == "\\", index + 1 < chars.count {
                    index += 1
                    text.append(chars[index])
                } else {
                    text.append(d)
                }
                index += 1
            }
            guard current == quote else { throw fail("unterminated string") }
            index += 1
            return .string(text)
        }
        let start = index
        while let d = current, d != ";", d != "|", d != ")", d != "," {
            if d == ".", index + 1 < chars.count, chars[index + 1] == "." { break }
            index += 1
        }
        let raw = String(chars[start..<index]).trimmingCharacters(in: .whitespaces)
        guard !raw.isEmpty else { throw fail("expected a value") }
        guard !raw.contains(where: { "()\"' <>[]{}".contains($0) }) else { throw fail("\(raw.prefix(40)) is not a value: quote strings") }
        if raw == "true" { return .bool(true) }
        if raw == "false" { return .bool(false) }
        if raw == "null" { return .null }
        if let number = Double(raw), raw.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true {
            guard number.isFinite else { throw fail("the number \(raw.prefix(40)) is out of range") }
            return .number(number)
        }
        if QParser.looksLikeDateTime(raw) { return .dateTime(raw) }
        return .uri(raw)
    }

    static func looksLikeDateTime(_ s: String) -> Bool {
        let bytes = Array(s.utf8)
        func digits(_ range: Range<Int>) -> Bool { range.upperBound <= bytes.count && range.allSatisfy { bytes[$0] >= 48 && bytes[$0] <= 57 } }
        if bytes.count >= 10, digits(0..<4), bytes[4] == UInt8(ascii: "-"), digits(5..<7), bytes[7] == UInt8(ascii: "-"), digits(8..<10) { return true }
        if bytes.count >= 8, digits(0..<2), bytes[2] == UInt8(ascii: ":"), digits(3..<5), bytes[5] == UInt8(ascii: ":") { return true }
        return false
    }
}
