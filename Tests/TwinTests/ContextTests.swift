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

    @Test func olderCoreContextURLsAreTheBuiltInOne() {
        #expect(CoreContext.isCoreURL("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"))
        #expect(CoreContext.isCoreURL("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"))
        #expect(!CoreContext.isCoreURL("https://example.org/context.jsonld"))
    }
}
