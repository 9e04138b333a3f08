import CityKit
import Testing

@testable import Twin

@Suite struct QParserTests {
    @Test func comparisonsListsAndRanges() throws {
        #expect(try QParser.parse("temperature>20") == .term(QTerm(path: QPath(attribute: "temperature"), op: .greater, value: .number(20))))
        #expect(try QParser.parse("status==\"open\",\"closed\"") == .term(QTerm(path: QPath(attribute: "status"), op: .equal, value: .list([.string("open"), .string("closed")]))))
        #expect(try QParser.parse("speed==10..50") == .term(QTerm(path: QPath(attribute: "speed"), op: .equal, value: .range(.number(10), .number(50)))))
        #expect(try QParser.parse("seen>=2026-11-25T02:00:00Z") == .term(QTerm(path: QPath(attribute: "seen"), op: .greaterOrEqual, value: .dateTime("2026-11-25T02:00:00Z"))))
    }

    @Test func andBindsTighterThanOr() throws {
        let parsed = try QParser.parse("a==1;b==2|c==3")
        guard case .or(let items) = parsed, items.count == 2, case .and(let inner) = items[0] else {
            Issue.record("unexpected shape \(parsed)")
            return
        }
        #expect(inner.count == 2)
        guard case .and(let grouped) = try QParser.parse("a==1;(b==2|c==3)") else { Issue.record("parentheses lost"); return }
        #expect(grouped.count == 2)
    }

    @Test func pathsMetadataAndCompoundMembers() throws {
        guard case .term(let t) = try QParser.parse("pm25.observedAt>=2026-01-01T00:00:00Z") else { Issue.record("not a term"); return }
        #expect(t.path.attribute == "pm25")
        #expect(t.path.metadata == "observedAt")
        guard case .term(let c) = try QParser.parse("address[district]==\"福田区\"") else { Issue.record("not a term"); return }
        #expect(c.path.compound == ["district"])
        #expect(c.value == .string("福田区"))
        guard case .term(let s) = try QParser.parse("speed.accuracy<0.5") else { Issue.record("not a term"); return }
        #expect(s.path.subAttributes == ["accuracy"])
        guard case .term(let iri) = try QParser.parse("https://example.org/ns/temp>1") else { Issue.record("not a term"); return }
        #expect(iri.path.attribute == "https://example.org/ns/temp")
    }

    @Test func existenceAndAbsence() throws {
        #expect(try QParser.parse("!brokenLamp") == .term(QTerm(path: QPath(attribute: "brokenLamp"), op: nil, value: nil, negated: true)))
        #expect(try QParser.parse("brokenLamp") == .term(QTerm(path: QPath(attribute: "brokenLamp"), op: nil, value: nil)))
    }

    @Test(arguments: [
        "", "a==", "(a==1", "a==1)", "a=1", "a==\"unterminated", "a~=(", "a~=[", "!a==1", "a==1;", ";a==1", "a==1|||b==2", "a[==1", "a==(", "a==b c",
        "name~=\\p{Han}", "name~=(?<=a", "name~=(?<!a))", "name~=(?<=a)\\p{Han}",
    ])
    func malformedQueriesAreRefused(_ text: String) {
        #expect(throws: NGSIError.self) { try QParser.parse(text) }
    }

    @Test func hostileQueriesAreBounded() {
        let deep = String(repeating: "(", count: 500) + "a==1" + String(repeating: ")", count: 500)
        #expect { try QParser.parse(deep) } throws: { ($0 as? NGSIError)?.kind == .tooComplexQuery }
        let many = (0..<200).map { "a\($0)==1" }.joined(separator: ";")
        #expect { try QParser.parse(many) } throws: { ($0 as? NGSIError)?.kind == .tooComplexQuery }
        let long = "a==\"" + String(repeating: "x", count: 10_000) + "\""
        #expect { try QParser.parse(long) } throws: { ($0 as? NGSIError)?.kind == .tooComplexQuery }
        #expect { try QParser.parse("a==1e999") } throws: { ($0 as? NGSIError)?.kind == .badRequestData }
    }
}
