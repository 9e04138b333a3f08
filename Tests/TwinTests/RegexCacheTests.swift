import Foundation
import Testing

@testable import Twin

/// Subscription `idPattern`s: the literal-prefix shortcut answers exactly as the regular expression does.
@Suite struct RegexCacheTests {
    @Test func literalPrefixes() {
        #expect(RegexCache.literalPrefix("^urn:ngsi-ld:NoiseSensor:7-")! == ("urn:ngsi-ld:NoiseSensor:7-", true))
        #expect(RegexCache.literalPrefix(#"^urn:ngsi-ld:Streetlight\.福田"#)! == ("urn:ngsi-ld:Streetlight.福田", true))
        #expect(RegexCache.literalPrefix("^urn:ngsi-ld:Bus:[0-9]+$")! == ("urn:ngsi-ld:Bus:", false))
        #expect(RegexCache.literalPrefix("^urn:ngsi-ld:Busy?")! == ("urn:ngsi-ld:Bus", false))
        #expect(RegexCache.literalPrefix(#"^urn:x\d"#)! == ("urn:x", false))
        #expect(RegexCache.literalPrefix("^a|b") == nil)
        #expect(RegexCache.literalPrefix("urn:ngsi-ld:Bus") == nil)
    }

    @Test func shortcutAgreesWithTheRegularExpression() throws {
        let patterns = [
            "^urn:ngsi-ld:NoiseSensor:7-", #"^urn:ngsi-ld:Streetlight\.福田"#, "^urn:ngsi-ld:Bus:[0-9]+$", "^urn:ngsi-ld:Busy?", "^urn:ngsi-ld:Bus{2}",
            #"^urn:x\d"#, "^a|b", "Sensor:1", "^$", "^urn:ngsi-ld:(Bus|Tram):",
        ]
        let ids = [
            "urn:ngsi-ld:NoiseSensor:7-1", "urn:ngsi-ld:NoiseSensor:17-1", "urn:ngsi-ld:Streetlight.福田-3", "urn:ngsi-ld:StreetlightX福田",
            "urn:ngsi-ld:Bus:42", "urn:ngsi-ld:Bus:42a", "urn:ngsi-ld:Bu", "urn:ngsi-ld:Buss", "urn:x7", "urn:xa", "b", "", "urn:ngsi-ld:Tram:1",
        ]
        for pattern in patterns {
            let regex = try NSRegularExpression(pattern: pattern)
            for id in ids {
                let expected = regex.firstMatch(in: id, range: NSRange(id.startIndex..., in: id)) != nil
                #expect(RegexCache.matches(pattern, id) == expected, "\(pattern) on \(id)")
            }
        }
    }
}
