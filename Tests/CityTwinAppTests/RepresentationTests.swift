import CityKit
import CityTwinApp
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOFoundationCompat
import Testing

/// Formats, @context placement and media types as clients see them.
@Suite struct RepresentationTests {
    static let json: HTTPFields = [.contentType: "application/json"]
    static let lamp = #"{"id":"urn:ngsi-ld:Streetlight:ln-7","type":"Streetlight","power":{"type":"Property","value":60,"unitCode":"WTT","accuracy":{"type":"Property","value":0.5}},"refPole":{"type":"Relationship","object":"urn:ngsi-ld:Pole:7"},"location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[114.1,22.6]}}}"#

    func withLamp(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-repr-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var configuration = Configuration()
        configuration.dataDirectory = dir.path
        configuration.allowAnonymousWrites = true
        let app = try await buildApplication(configuration)
        try await app.test(.router) { client in
            let created = try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: Self.json, body: ByteBuffer(string: Self.lamp))
            #expect(created.status == .created)
            try await body(client)
        }
    }

    func get(_ client: any TestClientProtocol, _ uri: String, accept: String? = nil) async throws -> (TestResponse, JSON?) {
        let response = try await client.execute(uri: uri, method: .get, headers: accept.map { [.accept: $0] } ?? [:])
        return (response, try? JSONCoding.parse(Data(buffer: response.body)))
    }

    @Test func normalizedConciseAndSimplified() async throws {
        try await withLamp { client in
            let base = "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:ln-7"
            let (_, normalized) = try await get(client, base)
            #expect(normalized?["power"]?["accuracy"]?["value"] == .double(0.5))
            #expect(normalized?["power"]?["createdAt"] == nil)
            let (_, concise) = try await get(client, base + "?format=concise")
            #expect(concise?["power"]?["type"] == nil)
            #expect(concise?["power"]?["value"] == 60)
            #expect(concise?["refPole"] == ["object": "urn:ngsi-ld:Pole:7"])
            #expect(concise?["location"]?["type"] == "Point")
            let (_, simplified) = try await get(client, base + "?options=keyValues")
            #expect(simplified?["power"] == 60)
            #expect(simplified?["refPole"] == "urn:ngsi-ld:Pole:7")
            let (_, picked) = try await get(client, base + "?pick=id,power")
            #expect(picked?.objectValue?.keys.sorted() == ["id", "power"])
            let (_, omitted) = try await get(client, base + "?omit=location,refPole&options=sysAttrs")
            #expect(omitted?["location"] == nil && omitted?["power"]?["modifiedAt"] != nil && omitted?["createdAt"] != nil)
        }
    }

    /// A query reads what its answer shows: `pick=id` only the ids (from the key), `pick=id,type` no
    /// attributes; each answer is the same as when everything is read and then picked.
    @Test func queryPicksReadWhatTheyShow() async throws {
        try await withLamp { client in
            let query = "/ngsi-ld/v1/entities?type=Streetlight"
            let (_, ids) = try await get(client, query + "&pick=id")
            #expect(ids == [["id": "urn:ngsi-ld:Streetlight:ln-7"]])
            let (_, typed) = try await get(client, query + "&pick=id,type")
            #expect(typed == [["id": "urn:ngsi-ld:Streetlight:ln-7", "type": "Streetlight"]])
            let (_, times) = try await get(client, query + "&pick=id&options=sysAttrs")
            #expect(times?.arrayValue?.first?.objectValue?.keys.sorted() == ["createdAt", "id", "modifiedAt"])
            let (_, power) = try await get(client, query + "&pick=power&format=simplified")
            #expect(power == [["power": 60]])
            let near = query + "&georel=near%3BmaxDistance%3D%3D100&geometry=Point&coordinates=%5B114.1005,22.6%5D"
            let (_, nearIDs) = try await get(client, near + "&pick=id")
            #expect(nearIDs == [["id": "urn:ngsi-ld:Streetlight:ln-7"]])
            let (_, farIDs) = try await get(client, near.replacingOccurrences(of: "114.1005", with: "114.2") + "&pick=id")
            #expect(farIDs == [])
            let (_, geo) = try await get(client, query + "&pick=id", accept: "application/geo+json")
            #expect(geo?["features"]?.arrayValue?.count == 1)
            #expect(geo?["features"]?.arrayValue?.first?["id"] == "urn:ngsi-ld:Streetlight:ln-7")
        }
    }

    @Test func mediaTypesAndContextPlacement() async throws {
        try await withLamp { client in
            let base = "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:ln-7"
            let (ld, ldBody) = try await get(client, base, accept: "application/ld+json")
            #expect(ld.headers[.contentType] == "application/ld+json")
            #expect(ldBody?["@context"] == .string("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"))
            let (geo, geoBody) = try await get(client, "/ngsi-ld/v1/entities?type=Streetlight", accept: "application/geo+json")
            #expect(geo.headers[.contentType] == "application/geo+json")
            #expect(geoBody?["type"] == "FeatureCollection")
            #expect(geoBody?["features"]?.arrayValue?.first?["geometry"]?["coordinates"] == [114.1, 22.6])

            // application/ld+json needs @context in the body; application/json must not have one.
            let noContext = try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: [.contentType: "application/ld+json"],
                                                     body: ByteBuffer(string: #"{"id":"urn:x:1","type":"T"}"#))
            #expect(noContext.status == .badRequest)
            let strayContext = try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: Self.json,
                                                        body: ByteBuffer(string: #"{"id":"urn:x:1","type":"T","@context":"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"}"#))
            #expect(strayContext.status == .badRequest)
            let inline = try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: [.contentType: "application/ld+json"],
                                                  body: ByteBuffer(string: #"{"id":"urn:x:2","type":"Bin","fill":{"type":"Property","value":0.9},"@context":[{"Bin":"https://example.org/Bin","fill":"https://example.org/fillLevel"},"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.7.jsonld"]}"#))
            #expect(inline.status == .created)
            let (_, expanded) = try await get(client, "/ngsi-ld/v1/entities/urn:x:2")
            #expect(expanded?["type"] == "https://example.org/Bin")
            #expect(expanded?["https://example.org/fillLevel"]?["value"] == .double(0.9))
        }
    }

    @Test func replaceAndAttributeReplacement() async throws {
        try await withLamp { client in
            let base = "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:ln-7"
            let put = try await client.execute(uri: base, method: .put, headers: Self.json, body: ByteBuffer(string: #"{"type":"Streetlight","status":{"type":"Property","value":"off"}}"#))
            #expect(put.status == .noContent)
            let (_, replaced) = try await get(client, base)
            #expect(replaced?["power"] == nil && replaced?["status"]?["value"] == "off")
            let attr = try await client.execute(uri: base + "/attrs/status", method: .put, headers: Self.json, body: ByteBuffer(string: #"{"type":"Property","value":"on"}"#))
            #expect(attr.status == .noContent)
            let missing = try await client.execute(uri: base + "/attrs/nothing", method: .put, headers: Self.json, body: ByteBuffer(string: #"{"type":"Property","value":1}"#))
            #expect(missing.status == .notFound)
            let (_, after) = try await get(client, base + "?options=keyValues")
            #expect(after?["status"] == "on")
        }
    }
}
