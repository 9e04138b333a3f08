import CityKit
import CityTwinApp
import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import NIOFoundationCompat
import HummingbirdTesting
import Testing

/// The HTTP edge through the router, without a socket: status codes, ProblemDetails, auth.
@Suite struct RouterTests {
    func withApp(anonymousWrites: Bool = true, instanceLimit: Int = 1000, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("citytwin-router-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var configuration = Configuration()
        configuration.dataDirectory = dir.path
        configuration.port = 0
        configuration.allowAnonymousWrites = anonymousWrites
        configuration.temporalInstanceLimit = instanceLimit
        let app = try await buildApplication(configuration)
        try await app.test(.router, body)
    }

    static let json: HTTPFields = [.contentType: "application/json"]
    static let entity = #"{"id":"urn:ngsi-ld:Streetlight:sz-001","type":"Streetlight","status":{"type":"Property","value":"ok"},"name":{"type":"LanguageProperty","languageMap":{"zh":"深南大道1号灯","en":"Shennan Blvd lamp 1"}}}"#

    func problemType(_ response: TestResponse) throws -> String? {
        try JSONCoding.parse(Data(buffer: response.body))["type"]?.stringValue
    }

    @Test func inlineContextsAreLinkedAsImplicitlyCreated() async throws {
        try await withApp { client in
            let lamp = #"{"id":"urn:ngsi-ld:Lamp:1","type":"Lamp","brightness":{"type":"Property","value":80},"@context":{"Lamp":"https://example.org/city#Lamp","brightness":"https://example.org/city#brightness"}}"#
            let ld: HTTPFields = [.contentType: "application/ld+json"]
            #expect(try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: ld, body: ByteBuffer(string: lamp)).status == .created)
            let query = #"{"type":"Query","entities":[{"type":"Lamp"}],"@context":{"Lamp":"https://example.org/city#Lamp","brightness":"https://example.org/city#brightness"}}"#
            let answer = try await client.execute(uri: "/ngsi-ld/v1/entityOperations/query", method: .post, headers: ld, body: ByteBuffer(string: query))
            #expect(answer.status == .ok)
            let entity = try JSONCoding.parse(Data(buffer: answer.body)).arrayValue?.first
            #expect(entity?["brightness"]?["value"] == 80)
            // The answer is application/json, so the context is linked: a URL this broker serves.
            let link = try #require(answer.headers[HTTPField.Name("Link")!])
            let url = try #require(link.split(separator: ">").first.map { String($0.dropFirst()) })
            let path = try #require(url.range(of: "/ngsi-ld/v1/jsonldContexts/").map { String(url[$0.lowerBound...]) })
            let served = try await client.execute(uri: path, method: .get)
            #expect(served.status == .ok)
            #expect(try JSONCoding.parse(Data(buffer: served.body))["@context"]?["Lamp"] == "https://example.org/city#Lamp")
            let listed = try await client.execute(uri: "/ngsi-ld/v1/jsonldContexts?kind=ImplicitlyCreated&details=true", method: .get)
            let details = try JSONCoding.parse(Data(buffer: listed.body)).arrayValue
            #expect(details?.count == 1)
            // Both requests (the create and the query) used it.
            #expect(details?.first?["numberOfHits"] == 2)
            #expect(details?.first?["lastUsage"]?.stringValue.flatMap(Timestamp.parse) != nil)
        }
    }

    @Test func temporalOverHTTP() async throws {
        try await withApp(instanceLimit: 2) { client in
            let readings = (0..<5).map { #"{"type":"Property","value":\#($0 * 10),"observedAt":"2026-11-25T0\#($0):00:00Z"}"# }.joined(separator: ",")
            let body = #"{"id":"urn:ngsi-ld:NoiseLevelObserved:hb-1","type":"NoiseLevelObserved","LAeq":[\#(readings)]}"#
            let created = try await client.execute(uri: "/ngsi-ld/v1/temporal/entities", method: .post, headers: Self.json, body: ByteBuffer(string: body))
            #expect(created.status == .created)
            let page = try await client.execute(uri: "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:NoiseLevelObserved:hb-1?options=temporalValues", method: .get)
            #expect(page.status == .partialContent)
            #expect(page.headers[HTTPField.Name("Content-Range")!] == "date-time 2026-11-25T00:00:00.000Z-2026-11-25T01:00:00.000Z/*")
            #expect(try JSONCoding.parse(Data(buffer: page.body))["LAeq"]?["values"]?.arrayValue?.count == 2)
            let aggregated = try await client.execute(
                uri: "/ngsi-ld/v1/temporal/entities?type=NoiseLevelObserved&options=aggregatedValues&aggrMethods=max,totalCount&aggrPeriodDuration=PT2H&timerel=after&timeAt=2026-11-25T00:00:00Z",
                method: .get)
            #expect(aggregated.status == .ok)
            let laeq = try JSONCoding.parse(Data(buffer: aggregated.body)).arrayValue?.first?["LAeq"]
            // After 00:00 (exclusive), in two-hour periods from 00:00: 10 (01:00) | 20, 30 | 40.
            #expect(laeq?["max"]?.arrayValue?.compactMap { $0.arrayValue?.first?.numberValue } == [10, 30, 40])
            #expect(laeq?["totalCount"]?.arrayValue?.compactMap { $0.arrayValue?.first?.numberValue } == [1, 2, 1])
            #expect(laeq?["max"]?.arrayValue?.first?.arrayValue?.dropFirst() == ["2026-11-25T00:00:00.000Z", "2026-11-25T02:00:00.000Z"])
            for bad in ["timerel=between&timeAt=2026-11-25T00:00:00Z", "timerel=after&timeAt=yesterday", "lastN=0", "options=aggregatedValues&aggrMethods=median",
                        "options=aggregatedValues&aggrPeriodDuration=P1M", "timeproperty=deletedAt"] {
                let response = try await client.execute(uri: "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:NoiseLevelObserved:hb-1?" + bad, method: .get)
                #expect(response.status == .badRequest, "\(bad)")
            }
            let missing = try await client.execute(uri: "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:NoiseLevelObserved:none", method: .get)
            #expect(missing.status == .notFound)
            #expect(try problemType(missing) == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound")
        }
    }

    @Test func geoQueriesOverHTTP() async throws {
        try await withApp { client in
            let lamp = #"{"id":"urn:ngsi-ld:Streetlight:fu-1","type":"Streetlight","location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[114.0579,22.5431]}}}"#
            #expect(try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: Self.json, body: ByteBuffer(string: lamp)).status == .created)
            let bowtie = #"{"id":"urn:ngsi-ld:Park:x","type":"Park","location":{"type":"GeoProperty","value":{"type":"Polygon","coordinates":[[[114,22],[114.1,22.1],[114.1,22],[114,22.1],[114,22]]]}}}"#
            let refused = try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: Self.json, body: ByteBuffer(string: bowtie))
            #expect(refused.status == .badRequest)
            #expect(try problemType(refused) == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData")
            #expect(try await client.execute(uri: "/ngsi-ld/v1/entities/urn:ngsi-ld:Park:x", method: .get).status == .notFound)

            let near = try await client.execute(uri: "/ngsi-ld/v1/entities?georel=near%3BmaxDistance%3D%3D200&geometry=Point&coordinates=%5B114.058,22.544%5D", method: .get)
            #expect(near.status == .ok)
            #expect(try JSONCoding.parse(Data(buffer: near.body)).arrayValue?.count == 1)
            let far = try await client.execute(uri: "/ngsi-ld/v1/entities?georel=near%3BmaxDistance%3D%3D50&geometry=Point&coordinates=%5B114.058,22.544%5D", method: .get)
            #expect(try JSONCoding.parse(Data(buffer: far.body)).arrayValue?.count == 0)
            for bad in ["georel=near&geometry=Point&coordinates=%5B114,22%5D", "georel=within&geometry=Point&coordinates=%5B114,95%5D",
                        "georel=within&geometry=Polygon", "georel=within&geometry=Point&coordinates=not-json"] {
                let response = try await client.execute(uri: "/ngsi-ld/v1/entities?" + bad, method: .get)
                #expect(response.status == .badRequest, "\(bad)")
                #expect(try problemType(response) == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData", "\(bad)")
            }
            let query = #"{"type":"Query","geoQ":{"georel":"within","geometry":"Polygon","coordinates":[[[114.0,22.5],[114.1,22.5],[114.1,22.6],[114.0,22.6],[114.0,22.5]]]}}"#
            let posted = try await client.execute(uri: "/ngsi-ld/v1/entityOperations/query", method: .post, headers: Self.json, body: ByteBuffer(string: query))
            #expect(posted.status == .ok)
            #expect(try JSONCoding.parse(Data(buffer: posted.body)).arrayValue?.first?["id"] == "urn:ngsi-ld:Streetlight:fu-1")
        }
    }

    @Test func createRetrieveAndErrors() async throws {
        try await withApp { client in
            let created = try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: Self.json, body: ByteBuffer(string: Self.entity))
            #expect(created.status == .created)
            #expect(created.headers[.location] == "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:sz-001")
            let again = try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: Self.json, body: ByteBuffer(string: Self.entity))
            #expect(again.status == .conflict)
            #expect(try problemType(again) == "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists")
            let got = try await client.execute(uri: "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:sz-001?options=keyValues&lang=zh", method: .get)
            #expect(got.status == .ok)
            let body = try JSONCoding.parse(Data(buffer: got.body))
            #expect(body["name"] == "深南大道1号灯")
            #expect(got.headers[HTTPField.Name("Link")!]?.contains("ngsi-ld-core-context-v1.8.jsonld") == true)

            // an id in Chinese: its Location is percent-encoded, and the encoded path finds it
            let chinese = #"{"id": "urn:ngsi-ld:Streetlight:福田-1", "type": "Streetlight", "status": {"type": "Property", "value": "亮"}}"#
            let createdChinese = try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: Self.json, body: ByteBuffer(string: chinese))
            #expect(createdChinese.headers[.location] == "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:%E7%A6%8F%E7%94%B0-1")
            let gotChinese = try await client.execute(uri: "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:%E7%A6%8F%E7%94%B0-1", method: .get)
            #expect(gotChinese.status == .ok)
            #expect(try JSONCoding.parse(Data(buffer: gotChinese.body))["id"] == "urn:ngsi-ld:Streetlight:福田-1")
            let badEncoding = try await client.execute(uri: "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:%E7%A6", method: .get)
            #expect(badEncoding.status == .badRequest)
            #expect(try problemType(badEncoding) == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData")

            let malformed = try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: Self.json, body: ByteBuffer(string: "{\"id\":"))
            #expect(malformed.status == .badRequest)
            #expect(try problemType(malformed) == "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest")
            let wrongType = try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: [.contentType: "text/plain"], body: ByteBuffer(string: Self.entity))
            #expect(wrongType.status == .unsupportedMediaType)
            let missing = try await client.execute(uri: "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:none", method: .get)
            #expect(missing.status == .notFound)
            #expect(try problemType(missing) == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound")
            let noFilter = try await client.execute(uri: "/ngsi-ld/v1/entities", method: .get)
            #expect(noFilter.status == .badRequest)
            let tooMany = try await client.execute(uri: "/ngsi-ld/v1/entities?type=Streetlight&limit=5000", method: .get)
            #expect(tooMany.status == .forbidden)
            #expect(try problemType(tooMany) == "https://uri.etsi.org/ngsi-ld/errors/TooManyResults")
            let badQ = try await client.execute(uri: "/ngsi-ld/v1/entities?type=Streetlight&q=status%3D%3D(", method: .get)
            #expect(badQ.status == .badRequest)
            let notAcceptable = try await client.execute(uri: "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:sz-001", method: .get, headers: [.accept: "text/html"])
            #expect(notAcceptable.status == .notAcceptable)
            let unknown = try await client.execute(uri: "/ngsi-ld/v1/nothing/here", method: .get)
            #expect(unknown.status == .notFound)
            #expect(try problemType(unknown) == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound")
            let tenant = try await client.execute(uri: "/ngsi-ld/v1/entities?type=Streetlight", method: .get, headers: [HTTPField.Name("NGSILD-Tenant")!: "nowhere"])
            #expect(tenant.status == .notFound)
            #expect(try problemType(tenant) == "https://uri.etsi.org/ngsi-ld/errors/NonexistentTenant")
        }
    }

    @Test func batchAndPartialUpdatesAnswer207() async throws {
        try await withApp { client in
            let batch = "[\(Self.entity), {\"id\": \"bad id\", \"type\": \"Streetlight\"}]"
            let created = try await client.execute(uri: "/ngsi-ld/v1/entityOperations/create", method: .post, headers: Self.json, body: ByteBuffer(string: batch))
            #expect(created.status.code == 207)
            let body = try JSONCoding.parse(Data(buffer: created.body))
            #expect(body["success"] == ["urn:ngsi-ld:Streetlight:sz-001"])
            #expect(body["errors"]?.arrayValue?.count == 1)
            let update = try await client.execute(uri: "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:sz-001/attrs", method: .patch, headers: Self.json,
                                                  body: ByteBuffer(string: #"{"status":{"type":"Property","value":"broken"},"power":{"type":"Property","value":60}}"#))
            #expect(update.status.code == 207)
            #expect(try JSONCoding.parse(Data(buffer: update.body))["notUpdated"]?.arrayValue?.first?["attributeName"] == "power")
            let query = try await client.execute(uri: "/ngsi-ld/v1/entities?type=Streetlight&q=status==%22broken%22&count=true", method: .get)
            #expect(query.headers[HTTPField.Name("NGSILD-Results-Count")!] == "1")
        }
    }

    @Test func writesNeedCredentialsUnlessAllowed() async throws {
        try await withApp(anonymousWrites: false) { client in
            let anonymous = try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: Self.json, body: ByteBuffer(string: Self.entity))
            #expect(anonymous.status == .unauthorized)
            var badKey = Self.json
            badKey[HTTPField.Name("X-API-Key")!] = "ct_not_a_key"
            let rejected = try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: badKey, body: ByteBuffer(string: Self.entity))
            #expect(rejected.status == .unauthorized)
            let read = try await client.execute(uri: "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:sz-001", method: .get)
            #expect(read.status == .notFound)
        }
    }

    @Test func hostedContextsServeChineseTerms() async throws {
        try await withApp { client in
            let posted = try await client.execute(uri: "/ngsi-ld/v1/jsonldContexts", method: .post, headers: Self.json,
                                                  body: ByteBuffer(string: #"{"@context": {"温度": "https://example.org/city/temperature", "路灯": "https://example.org/city/Streetlight"}}"#))
            #expect(posted.status == .created)
            let location = try #require(posted.headers[.location])
            let listed = try await client.execute(uri: "/ngsi-ld/v1/jsonldContexts?details=true", method: .get)
            let entry = try #require(try JSONCoding.parse(Data(buffer: listed.body)).arrayValue?.first)
            #expect(entry["kind"] == "Hosted")
            let url = try #require(entry["URL"]?.stringValue)
            #expect(url.hasSuffix(location.split(separator: "/").last.map(String.init) ?? "?"))
            let link = "<\(url)>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""
            var headers = Self.json
            headers[HTTPField.Name("Link")!] = link
            let created = try await client.execute(uri: "/ngsi-ld/v1/entities", method: .post, headers: headers,
                                                   body: ByteBuffer(string: #"{"id": "urn:ngsi-ld:Streetlight:ns-9", "type": "路灯", "温度": {"type": "Property", "value": 41.5}}"#))
            #expect(created.status == .created)
            // Without the context the names come back expanded; with it, in Chinese.
            let plain = try JSONCoding.parse(Data(buffer: try await client.execute(uri: "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:ns-9", method: .get).body))
            #expect(plain["https://example.org/city/temperature"]?["value"] == .double(41.5))
            let compacted = try await client.execute(uri: "/ngsi-ld/v1/entities?type=路灯&q=温度>40".addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed)!, method: .get, headers: [HTTPField.Name("Link")!: link])
            let first = try #require(try JSONCoding.parse(Data(buffer: compacted.body)).arrayValue?.first)
            #expect(first["type"] == "路灯")
            #expect(first["温度"]?["value"] == .double(41.5))
            let deleted = try await client.execute(uri: location, method: .delete)
            #expect(deleted.status == .noContent)
            #expect(try await client.execute(uri: location, method: .get).status == .notFound)
        }
    }
}
