import Testing

@testable import Twin

/// Entity, relationship and dataset ids must be URIs: a scheme (RFC 3986), a colon, and no spaces or
/// characters a URI never holds; other scripts (Chinese) are allowed after the scheme.
@Suite struct URITests {
    @Test func acceptsURIs() {
        for id in ["urn:ngsi-ld:Streetlight:ln-7", "urn:ngsi-ld:Road:深南大道", "https://example.org/a?b=c#d", "x:y", "coap+tcp://[::1]/s", "a1.b-c:z", "URN:X:1"] {
            #expect(EntityInput.isURI(id), "\(id)")
        }
    }

    @Test func rejectsWhatIsNotAURI() {
        let long = "urn:" + String(repeating: "a", count: 1021)
        for id in ["", ":x", "urn", "urn:", "1abc:x", "-a:x", "道路:x", "ur n:x", "urn:a b", "urn:a\tb", "urn:a<b", "urn:a>b", "urn:a\"b", "urn:a{b",
                   "urn:a}b", "urn:a|b", "urn:a\\b", "urn:a^b", "urn:a`b", "urn:\u{7}", long] {
            #expect(!EntityInput.isURI(id), "\(id)")
        }
        #expect(EntityInput.isURI(String(long.dropLast())))
    }
}
