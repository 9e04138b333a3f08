import CityKit
import CityTwinApp
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOFoundationCompat
import Testing

/// `/subscriptions` through the router: create, list, retrieve, update, delete, and the errors of each.
@Suite struct SubscriptionRouterTests {
    static let json: HTTPFields = [.contentType: "application/json"]
    static let base = "/ngsi-ld/v1/subscriptions"
    static let subscription = #"""
        {"type":"Subscription","subscriptionName":"福田区 PM2.5 超标","entities":[{"type":"AirQualityObserved"}],"watchedAttributes":["pm25"],
         "q":"pm25>75","notification":{"attributes":["pm25"],"format":"keyValues","endpoint":{"uri":"http://127.0.0.1:9/notify","accept":"application/json"}}}
        """#

    func post(_ client: any TestClientProtocol, _ body: String, headers: HTTPFields = json) async throws -> TestResponse {
        try await client.execute(uri: Self.base, method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    func problem(_ response: TestResponse) throws -> String? {
        try JSONCoding.parse(Data(buffer: response.body))["type"]?.stringValue
    }

    @Test func createRetrieveListUpdateDelete() async throws {
        try await RouterTests().withApp { client in
            let created = try await post(client, Self.subscription)
            #expect(created.status == .created)
            let location = try #require(created.headers[.location])
            #expect(location.hasPrefix("/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:"))

            let retrieved = try await client.execute(uri: location, method: .get)
            #expect(retrieved.status == .ok)
            let body = try JSONCoding.parse(Data(buffer: retrieved.body))
            #expect(body["subscriptionName"] == "福田区 PM2.5 超标")
            #expect(body["status"] == "active")
            #expect(body["notification"]?["timesSent"] == 0)
            #expect(body["q"] == "pm25>75")

            let patched = try await client.execute(
                uri: location, method: .patch, headers: Self.json, body: ByteBuffer(string: #"{"isActive":false,"notification":{"format":"normalized"}}"#))
            #expect(patched.status == .noContent)
            let after = try JSONCoding.parse(Data(buffer: try await client.execute(uri: location + "?options=sysAttrs", method: .get).body))
            #expect(after["status"] == "paused")
            #expect(after["notification"]?["format"] == "normalized")
            // The endpoint was kept: a patch of notification changes only the members it names.
            #expect(after["notification"]?["endpoint"]?["uri"] == "http://127.0.0.1:9/notify")
            #expect(after["createdAt"]?.stringValue.flatMap(Timestamp.parse) != nil)

            let explicit = #"{"id":"urn:ngsi-ld:Subscription:lamps","type":"Subscription","entities":[{"type":"Streetlight"}],"notification":{"endpoint":{"uri":"mqtt://127.0.0.1:1883/city/lamps"}}}"#
            #expect(try await post(client, explicit).status == .created)
            let duplicate = try await post(client, explicit)
            #expect(duplicate.status == .conflict)
            #expect(try problem(duplicate) == "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists")

            let page = try await client.execute(uri: Self.base + "?limit=1&count=true", method: .get)
            #expect(page.headers[HTTPField.Name("NGSILD-Results-Count")!] == "2")
            #expect(try JSONCoding.parse(Data(buffer: page.body)).arrayValue?.count == 1)
            let second = try await client.execute(uri: Self.base + "?limit=1&offset=1", method: .get)
            #expect(try JSONCoding.parse(Data(buffer: second.body)).arrayValue?.first?["id"] == "urn:ngsi-ld:Subscription:lamps")

            #expect(try await client.execute(uri: location, method: .delete).status == .noContent)
            let gone = try await client.execute(uri: location, method: .get)
            #expect(gone.status == .notFound)
            #expect(try problem(gone) == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound")
            #expect(try await client.execute(uri: location, method: .delete).status == .notFound)
            // Subscriptions are per tenant.
            let other = try await client.execute(uri: Self.base + "/urn:ngsi-ld:Subscription:lamps", method: .get, headers: [HTTPField.Name("NGSILD-Tenant")!: "shenzhen"])
            #expect(other.status == .notFound)
        }
    }

    @Test(arguments: [
        (#"{"type":"Subscription","entities":[{"type":"A"}]}"#, "BadRequestData"),
        (#"{"type":"Subscription","notification":{"endpoint":{"uri":"http://127.0.0.1:9/"}}}"#, "BadRequestData"),
        (#"{"type":"Subscriptions","entities":[{"type":"A"}],"notification":{"endpoint":{"uri":"http://127.0.0.1:9/"}}}"#, "BadRequestData"),
        (#"{"type":"Subscription","entities":[{"type":"A"}],"notification":{"endpoint":{"uri":"ftp://127.0.0.1/"}}}"#, "BadRequestData"),
        (#"{"type":"Subscription","entities":[{"type":"A"}],"notification":{"endpoint":{"uri":"mqtt://127.0.0.1:1883"}}}"#, "BadRequestData"),
        (#"{"type":"Subscription","entities":[{"type":"A"}],"q":"pm25>>3","notification":{"endpoint":{"uri":"http://127.0.0.1:9/"}}}"#, "BadRequestData"),
        (#"{"type":"Subscription","entities":[{"type":"A"}],"throttling":-1,"notification":{"endpoint":{"uri":"http://127.0.0.1:9/"}}}"#, "BadRequestData"),
        (#"{"type":"Subscription","entities":[{"type":"A","idPattern":"(("}],"notification":{"endpoint":{"uri":"http://127.0.0.1:9/"}}}"#, "BadRequestData"),
        (#"{"type":"Subscription","entities":[{"type":"A"}],"watchedAttributes":["a"],"timeInterval":10,"notification":{"endpoint":{"uri":"http://127.0.0.1:9/"}}}"#, "BadRequestData"),
        (#"{"type":"Subscription","entities":[{"type":"A"}],"notificationTrigger":["whenever"],"notification":{"endpoint":{"uri":"http://127.0.0.1:9/"}}}"#, "BadRequestData"),
        (#"{"type":"Subscription","entities":[{"type":"A"}],"geoQ":{"georel":"near;maxDistance==10","geometry":"Point","coordinates":[200,0]},"notification":{"endpoint":{"uri":"http://127.0.0.1:9/"}}}"#, "BadRequestData"),
        (#"{"type":"Subscription","entities":[{"type":"A"}],"notification":{"endpoint":{"uri":"http://127.0.0.1:9/","receiverInfo":[{"key":"X-A","value":"a\r\nb"}]}}}"#, "BadRequestData"),
        (#"{"type":"Subscription","entities":[{"type":"A"}],"colour":"red","notification":{"endpoint":{"uri":"http://127.0.0.1:9/"}}}"#, "BadRequestData"),
        (#"{"type":"Subscription","entities":[{"type":"A"}],"notification":{"endpoint":{"uri":"http://127.0.0.1:9/"}}"#, "InvalidRequest"),
        (#"[1,2]"#, "BadRequestData"),
    ])
    func badSubscriptionsAreRefusedAndNothingIsStored(_ body: String, _ error: String) async throws {
        try await RouterTests().withApp { client in
            let response = try await post(client, body)
            #expect(response.status == .badRequest)
            #expect(try problem(response) == "https://uri.etsi.org/ngsi-ld/errors/" + error)
            let list = try await client.execute(uri: Self.base + "?count=true&limit=0", method: .get)
            #expect(list.headers[HTTPField.Name("NGSILD-Results-Count")!] == "0")
        }
    }

    @Test func badUpdatesChangeNothing() async throws {
        try await RouterTests().withApp { client in
            let location = try #require(try await post(client, Self.subscription).headers[.location])
            for patch in [#"{"q":"(("}"#, #"{"notification":{"endpoint":{"uri":"nope"}}}"#, #"{"id":"urn:ngsi-ld:Subscription:other"}"#, "{}", "not json"] {
                let response = try await client.execute(uri: location, method: .patch, headers: Self.json, body: ByteBuffer(string: patch))
                #expect(response.status == .badRequest, "\(patch)")
            }
            let body = try JSONCoding.parse(Data(buffer: try await client.execute(uri: location, method: .get).body))
            #expect(body["q"] == "pm25>75")
            #expect(body["notification"]?["endpoint"]?["uri"] == "http://127.0.0.1:9/notify")
            let missing = try await client.execute(uri: Self.base + "/urn:ngsi-ld:Subscription:none", method: .patch, headers: Self.json, body: ByteBuffer(string: #"{"isActive":false}"#))
            #expect(missing.status == .notFound)
            #expect(try await client.execute(uri: Self.base + "/not%20a%20uri", method: .get).status == .badRequest)
        }
    }

    @Test func writesNeedCredentials() async throws {
        try await RouterTests().withApp(anonymousWrites: false) { client in
            let response = try await post(client, Self.subscription)
            #expect(response.status == .unauthorized)
        }
    }
}
