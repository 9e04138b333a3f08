import CityKit
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Twin

/// The device routes, as FIWARE's IoT Agent for JSON has them: provisioning (`/iot/services`,
/// `/iot/devices`) and measurements (`POST /iot/json?k=APIKEY&i=DEVICE_ID`). `fiware-service` names the
/// tenant.
public struct IoTAgentController<Context: TwinRequestContext>: Sendable {
    let provisioning: ProvisioningService
    let measurements: MeasurementService
    let bodyLimit: Int
    let allowAnonymousWrites: Bool

    public init(provisioning: ProvisioningService, measurements: MeasurementService, bodyLimit: Int, allowAnonymousWrites: Bool) {
        self.provisioning = provisioning
        self.measurements = measurements
        self.bodyLimit = bodyLimit
        self.allowAnonymousWrites = allowAnonymousWrites
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.post("services", use: createGroups)
        group.get("services", use: listGroups)
        group.delete("services", use: deleteGroup)
        group.post("devices", use: createDevices)
        group.get("devices", use: listDevices)
        group.get("devices/{id}", use: device)
        group.delete("devices/{id}", use: deleteDevice)
        group.post("json", use: measurement)
        // Anything else under /iot is a 404 in the same format, not an empty one.
        for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
            group.on("**", method: method) { request, _ -> Response in
                throw SensingError(.notFound, "no resource at \(request.uri.path)")
            }
        }
    }

    static var serviceHeader: HTTPField.Name { HTTPField.Name("fiware-service")! }

    func tenant(_ request: Request) throws(SensingError) -> Tenant? {
        guard let name = request.headers[Self.serviceHeader], !name.isEmpty else { return nil }
        guard Tenant.validate(name.lowercased()) else { throw SensingError(.badRequest, "invalid fiware-service \(name)") }
        return Tenant(name.lowercased())
    }

    func authorize(_ context: Context) throws(SensingError) {
        if allowAnonymousWrites || context.principal.canWrite { return }
        if context.principal.kind == .anonymous { throw SensingError(.unauthorized, "provisioning needs an API key or a bearer token") }
        throw SensingError(.forbidden, "\(context.principal.id) may not provision devices")
    }

    func body(_ request: Request) async throws -> JSON {
        let type = request.headers[.contentType].map { $0.split(separator: ";")[0].trimmingCharacters(in: .whitespaces).lowercased() }
        guard type == "application/json" else { throw SensingError(.unsupportedMediaType, "Content-Type must be application/json") }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > bodyLimit {
            throw SensingError(.payloadTooLarge, "the body is \(length) bytes; at most \(bodyLimit) are accepted")
        }
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: bodyLimit)
        } catch {
            throw SensingError(.payloadTooLarge, "the body is larger than \(bodyLimit) bytes")
        }
        do {
            return try JSONCoding.parse(Data(buffer.readableBytesView))
        } catch {
            throw SensingError(.wrongSyntax, "the body is not valid JSON: \(error)")
        }
    }

    static func json(_ body: JSON, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: JSONCoding.data(body))))
    }

    func page(_ request: Request) throws(SensingError) -> (Int, Int) {
        let q = request.uri.queryParameters
        guard let limit = Int(q.get("limit") ?? "20"), (0...1000).contains(limit), let offset = Int(q.get("offset") ?? "0"), offset >= 0 else {
            throw SensingError(.badRequest, "limit must be 0…1000 and offset not negative")
        }
        return (limit, offset)
    }

    @Sendable func createGroups(_ request: Request, context: Context) async throws -> Response {
        try authorize(context)
        try await provisioning.createGroups(try await body(request), tenant: try tenant(request) ?? .default)
        return Response(status: .created)
    }

    @Sendable func listGroups(_ request: Request, context: Context) async throws -> Response {
        let groups = try await provisioning.store.groups(tenant: try tenant(request) ?? .default)
        return Self.json(["count": .integer(Int64(groups.count)), "services": .array(groups.map(\.json))])
    }

    @Sendable func deleteGroup(_ request: Request, context: Context) async throws -> Response {
        try authorize(context)
        try await provisioning.deleteGroup(apikey: request.uri.queryParameters.get("apikey"), tenant: try tenant(request) ?? .default)
        return Response(status: .noContent)
    }

    @Sendable func createDevices(_ request: Request, context: Context) async throws -> Response {
        try authorize(context)
        try await provisioning.createDevices(try await body(request), tenant: try tenant(request) ?? .default)
        return Response(status: .created)
    }

    @Sendable func listDevices(_ request: Request, context: Context) async throws -> Response {
        let (limit, offset) = try page(request)
        let page = try await provisioning.store.devices(tenant: try tenant(request) ?? .default, limit: limit, offset: offset)
        return Self.json(["count": .integer(Int64(page.total)), "devices": .array(page.devices.map(\.json))])
    }

    func deviceID(_ context: Context) throws(SensingError) -> String {
        guard let id = context.parameters.get("id")?.removingPercentEncoding, Device.isKey(id) else { throw SensingError(.badRequest, "the device id is not valid") }
        return id
    }

    @Sendable func device(_ request: Request, context: Context) async throws -> Response {
        Self.json(try await provisioning.device(try deviceID(context), tenant: try tenant(request) ?? .default).json)
    }

    @Sendable func deleteDevice(_ request: Request, context: Context) async throws -> Response {
        try authorize(context)
        try await provisioning.deleteDevice(try deviceID(context), tenant: try tenant(request) ?? .default)
        return Response(status: .noContent)
    }

    /// A measurement: the device authenticates with its API key (`k`).
    @Sendable func measurement(_ request: Request, context: Context) async throws -> Response {
        let q = request.uri.queryParameters
        try await measurements.accept(apikey: q.get("k"), deviceID: q.get("i"), payload: try await body(request), tenant: try tenant(request))
        return Response(status: .ok)
    }
}
