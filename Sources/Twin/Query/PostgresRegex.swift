/// Rewrites an ECMAScript regular expression (what NGSI-LD's `~=` and `idPattern` take) into PostgreSQL's
/// advanced regular expressions, where the two read the same text differently.
///
/// - `\b` and `\B` (word boundaries) are `\y` and `\Y`; inside brackets `\b` stays a backspace.
/// - `.` matches anything but a line terminator, as in ECMAScript (PostgreSQL's also matches newlines).
/// - `\xhh` takes exactly two hex digits (PostgreSQL's takes all that follow).
/// - named groups `(?<name>…)` become plain groups (lookbehinds `(?<=`, `(?<!` stay).
enum PostgresRegex {
    static func translate(_ pattern: String) -> String {
        var out = ""
        var inBrackets = false
        var chars = Array(pattern.unicodeScalars)[...]
        while let c = chars.popFirst() {
            switch c {
            case "\\":
                guard let next = chars.popFirst() else {
                    out += "\\"
                    continue
                }
                switch next {
                case "b" where !inBrackets: out += "\\y"
                case "B" where !inBrackets: out += "\\Y"
                case "x":
                    let hex = chars.prefix(2)
                    if hex.count == 2, hex.allSatisfy(\.properties.isASCIIHexDigit) {
                        out += "\\u00" + String(String.UnicodeScalarView(hex))
                        chars = chars.dropFirst(2)
                    } else {
                        out += "x"  // ECMAScript (Annex B): an incomplete \x is the letter
                    }
                default:
                    out.unicodeScalars.append(c)
                    out.unicodeScalars.append(next)
                }
            case "[" where !inBrackets:
                // ECMAScript [] matches nothing and [^] any character; in PostgreSQL a ] there is a literal.
                if chars.first == "]" {
                    out += "(?!x)x"
                    chars = chars.dropFirst()
                } else if chars.starts(with: "^]".unicodeScalars) {
                    out += "."  // PostgreSQL's own . matches every character, newlines too
                    chars = chars.dropFirst(2)
                } else {
                    inBrackets = true
                    out += "["
                    if chars.first == "^" {
                        out += "^"
                        chars = chars.dropFirst()
                    }
                }
            case "]" where inBrackets:
                inBrackets = false
                out += "]"
            case "." where !inBrackets:
                out += "[^\\n\\r\\u2028\\u2029]"
            case "(" where !inBrackets && chars.starts(with: "?<".unicodeScalars):
                // A named group loses its name; a lookbehind's "?<=" or "?<!" is copied as it comes.
                out += "("
                let third = chars.dropFirst(2).first
                if third != "=", third != "!", let close = chars.firstIndex(of: ">") { chars = chars[chars.index(after: close)...] }
            default:
                out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
