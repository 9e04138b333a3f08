import Foundation

/// Which patterns `~=` and `idPattern` accept: ECMAScript's syntax as Swift's Regex reads it, and also the
/// lookbehinds `(?<=…)` and `(?<!…)`, which Swift's Regex lacks; a pattern with one is checked by ICU
/// (`NSRegularExpression`), which is what runs patterns on SQLite (PostgreSQL runs lookbehinds natively).
enum RegexSyntax {
    static func isValid(_ pattern: String) -> Bool {
        if (try? Regex(pattern)) != nil { return true }
        guard pattern.contains("(?<=") || pattern.contains("(?<!") else { return false }
        return (try? NSRegularExpression(pattern: pattern)) != nil
    }
}
