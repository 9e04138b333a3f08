import CityKit
import Testing

@testable import Twin

@Suite struct ContextTests {
    @Test func coreTermsAndDefaultVocabulary() {
        let core = CoreContext.context
        #expect(core.expand("location") == "https://uri.etsi.org/ngsi-ld/location")
        #expect(core.expand("temperature") == "https://uri.etsi.org/ngsi-ld/default-context/temperature")
        #expect(core.compact("https://uri.etsi.org/ngsi-ld/default-context/temperature") == "temperature")
        #expect(core.compact("https://uri.etsi.org/ngsi-ld/location") == "location")
        #expect(core.expand("urn:x:y") == "urn:x:y")
    }

    @Test func userTermsAndPrefixes() {
        let user = LDContext(definitions: [["schema": "https://schema.org/", "name": "schema:name", "pm25": ["@id": "https://smartdatamodels.org/dataModel.Environment/pm25"]], CoreContext.definitions], source: nil)
        #expect(user.expand("name") == "https://schema.org/name")
        #expect(user.expand("schema:address") == "https://schema.org/address")
        #expect(user.expand("pm25") == "https://smartdatamodels.org/dataModel.Environment/pm25")
        #expect(user.compact("https://schema.org/name") == "name")
        // The core context is protected: a user cannot redefine its terms.
        let hostile = LDContext(definitions: [["location": "https://evil.example/loc"], CoreContext.definitions], source: nil)
        #expect(hostile.expand("location") == "https://uri.etsi.org/ngsi-ld/location")
    }

    @Test func iriWithoutTermCompactsToPrefixedName() {
        // given a context with prefixes (a simple one ending in "/", one declared with @prefix, one not a prefix)
        let user = LDContext(definitions: [[
            "schema": "https://schema.org/", "sdm": ["@id": "https://smartdatamodels.org/", "@prefix": true],
            "sdmEnv": ["@id": "https://smartdatamodels.org/dataModel.Environment/"], "sz": "https://data.sz.gov.cn/vocab#",
            "schema:knows": "https://example.org/other-meaning",
        ], CoreContext.definitions], source: nil)
        // then IRIs without a term of their own compact to prefix:suffix, the shortest prefix winning
        #expect(user.compact("https://schema.org/address") == "schema:address")
        #expect(user.compact("https://data.sz.gov.cn/vocab#井盖状态") == "sz:井盖状态")
        #expect(user.compact("https://smartdatamodels.org/dataModel.Environment/no2") == "sdm:dataModel.Environment/no2")
        #expect(user.compact("https://uri.etsi.org/ngsi-ld/hasSomethingNew") == "ngsi-ld:hasSomethingNew")
        // a compact IRI that is a term meaning something else is not used; the vocabulary comes first
        #expect(user.compact("https://schema.org/knows") == "https://schema.org/knows")
        #expect(user.compact("https://uri.etsi.org/ngsi-ld/default-context/temperature") == "temperature")
        #expect(user.compact("https://schema.org/") == "schema")
        #expect(user.compact("https://other.example/x") == "https://other.example/x")
        // and what is compacted expands back
        for iri in ["https://schema.org/address", "https://data.sz.gov.cn/vocab#井盖状态", "https://smartdatamodels.org/dataModel.Environment/no2"] {
            #expect(user.expand(user.compact(iri)) == iri)
        }
    }

    @Test func olderCoreContextURLsAreTheBuiltInOne() {
        #expect(CoreContext.isCoreURL("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"))
        #expect(CoreContext.isCoreURL("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"))
        #expect(!CoreContext.isCoreURL("https://example.org/context.jsonld"))
    }
}
