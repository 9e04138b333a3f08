import CityKit
import Foundation

/// The NGSI-LD core context v1.8, built in (ETSI, BSD 3-Clause; see Resources/CONTEXT-LICENCE.md).
public enum CoreContext {
    public static let url = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"

    /// The document as published.
    public static let document: JSON = {
        guard let fileURL = Bundle.module.url(forResource: "ngsi-ld-core-context-v1.8", withExtension: "jsonld"),
            let data = try? Data(contentsOf: fileURL),
            let json = try? JSONCoding.parse(data)
        else {
            fatalError("the built-in NGSI-LD core context is missing from the bundle")
        }
        return json
    }()

    public static let definitions: [String: JSON] = document["@context"]?.objectValue ?? [:]

    /// The core context alone.
    public static let context = LDContext(definitions: [definitions], source: nil)

    /// Whether a URL names any version of the core context (clients still name v1.3 to v1.7).
    public static func isCoreURL(_ url: String) -> Bool {
        url.hasPrefix("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context") && url.hasSuffix(".jsonld")
            || url == "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
    }
}
