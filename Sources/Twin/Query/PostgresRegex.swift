/// Rewrites an ECMAScript regular expression (what NGSI-LD's `~=` and `idPattern` take) into PostgreSQL's
/// advanced regular expressions, where the two read the same text differently.
///
/// - `\b` and `\B` (word boundaries) are `\y` and `\Y`; inside brackets `\b` stays a backspace.
/// - `.` matches anything but a line terminator, as in ECMAScript (PostgreSQL's also matches newlines).
/// - `\xhh` takes exactly two hex digits (PostgreSQL's takes all that follow).
/// - named groups `(?<name>…)` become plain groups (lookbehinds `(?<=`, `(?<!` stay).
enum PostgresRegex {
    /// Whether the pattern can be run on both backends: Unicode property classes (`\p{…}`, `\P{…}`), named
    /// back-references (`\k<…>`) and code-point escapes (`\u{…}`) have no PostgreSQL form, and without
    /// ECMAScript's `u` flag they are not what they seem. Checked where patterns are read, so such a query or
    /// subscription is refused with 400 instead of failing in the database.
    static func isExpressible(_ pattern: String) -> Bool {
        let chars = Array(pattern.unicodeScalars)
        var i = 0
        while i < chars.count {
            if chars[i] == "\\", i + 1 < chars.count {
                let next = chars[i + 1]
                if next == "p" || next == "P" || next == "k" { return false }
                if next == "u", i + 2 < chars.count, chars[i + 2] == "{" { return false }
                i += 2
            } else {
                i += 1
            }
        }
        return true
    }

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
