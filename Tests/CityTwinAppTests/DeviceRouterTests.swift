import CityKit
import CityTwinApp
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOFoundationCompat
import Testing

/// `/iot` through the router: provisioning, measurements, and errors in the IoT Agent's format.
@Suite struct DeviceRouterTests {
    static let json: HTTPFields = [.contentType: "application/json", HTTPField.Name("fiware-service")!: "Shenzhen"]

    func error(_ response: TestResponse) throws -> String? {
        try JSONCoding.parse(Data(buffer: response.body))["name"]?.stringValue
    }

    @Test func provisionMeasureAndRefuse() async throws {
        try await RouterTests().withApp { client in
            let device = #"{"devices":[{"device_id":"lamp-9","apikey":"lamp-key","entity_type":"Streetlight","attributes":[{"object_id":"w","name":"power","type":"Number","unitCode":"WTT"}]}]}"#
            #expect(try await client.execute(uri: "/iot/devices", method: .post, headers: Self.json, body: ByteBuffer(string: device)).status == .created)
            let duplicate = try await client.execute(uri: "/iot/devices", method: .post, headers: Self.json, body: ByteBuffer(string: device))
            #expect(duplicate.status == .conflict)
            #expect(try error(duplicate) == "DUPLICATE_DEVICE_ID")

            let measured = try await client.execute(uri: "/iot/json?k=lamp-key&i=lamp-9", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: #"{"w": 58.5}"#))
            #expect(measured.status == .ok)
            let lamp = try await client.execute(uri: "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:lamp-9?options=keyValues", method: .get, headers: [HTTPField.Name("NGSILD-Tenant")!: "shenzhen"])
            #expect(try JSONCoding.parse(Data(buffer: lamp.body))["power"] == 58.5)

            let unknown = try await client.execute(uri: "/iot/json?k=nope&i=lamp-9", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: #"{"w": 1}"#))
            #expect(unknown.status == .notFound)
            #expect(try error(unknown) == "DEVICE_NOT_FOUND")
            let malformed = try await client.execute(uri: "/iot/json?k=lamp-key&i=lamp-9", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: "{w:"))
            #expect(malformed.status == .badRequest)
            #expect(try error(malformed) == "WRONG_SYNTAX")
            let text = try await client.execute(uri: "/iot/json?k=lamp-key&i=lamp-9", method: .post, headers: [.contentType: "text/plain"], body: ByteBuffer(string: "w=1"))
            #expect(text.status == .unsupportedMediaType)

            let listed = try await client.execute(uri: "/iot/devices", method: .get, headers: Self.json)
            #expect(try JSONCoding.parse(Data(buffer: listed.body))["count"] == 1)
            #expect(try await client.execute(uri: "/iot/devices/lamp-9", method: .delete, headers: Self.json).status == .noContent)
            let gone = try await client.execute(uri: "/iot/devices/lamp-9", method: .get, headers: Self.json)
            #expect(gone.status == .notFound)
            #expect(try error(gone) == "DEVICE_NOT_FOUND")
            let nowhere = try await client.execute(uri: "/iot/nowhere", method: .get)
            #expect(nowhere.status == .notFound)
            #expect(try error(nowhere) == "NOT_FOUND")
        }
    }

    @Test func provisioningNeedsCredentials() async throws {
        try await RouterTests().withApp(anonymousWrites: false) { client in
            let response = try await client.execute(uri: "/iot/services", method: .post, headers: Self.json, body: ByteBuffer(string: #"{"services":[{"apikey":"k","entity_type":"T"}]}"#))
            #expect(response.status == .unauthorized)
            #expect(try error(response) == "UNAUTHORIZED")
        }
    }
}
