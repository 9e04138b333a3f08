import Testing

@testable import Twin

@Suite struct PostgresRegexTests {
    @Test(arguments: [
        (#"Road\b"#, #"Road\y"#), (#"\Bx"#, #"\Yx"#), (#"[\b]"#, #"[\b]"#), (#"a.b"#, #"a[^\n\r\u2028\u2029]b"#), (#"[.]"#, #"[.]"#),
        (#"\x411"#, #"\u00411"#), (#"\xg"#, #"xg"#), (#"(?<road>R)"#, #"(R)"#), (#"(?<=a)b"#, #"(?<=a)b"#), (#"(?<!a)b"#, #"(?<!a)b"#),
        (#"x[]y"#, #"x(?!x)xy"#), (#"x[^]y"#, #"x.y"#), (#"^深南\d+$"#, #"^深南\d+$"#), (#"\\b"#, #"\\b"#), (#"[^a]"#, #"[^a]"#),
    ])
    func rewritesWhereTheSyntaxesDiffer(_ ecma: String, _ postgres: String) {
        #expect(PostgresRegex.translate(ecma) == postgres)
    }

    @Test(arguments: [(#"\p{Han}+"#, false), (#"\P{L}"#, false), (#"(?<a>x)\k<a>"#, false), (#"\u{6DF1}"#, false), (#"\u6DF1"#, true), (#"\\p"#, true), (#"p{2}"#, true)])
    func patternsWithoutAPostgreSQLFormAreKnown(_ pattern: String, _ expressible: Bool) {
        #expect(PostgresRegex.isExpressible(pattern) == expressible)
    }
}
