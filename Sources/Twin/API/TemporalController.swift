import CityKit
import Foundation
import HTTPTypes
import Hummingbird

/// The NGSI-LD temporal routes: `/temporal/entities…` and `/temporal/entityOperations/query`.
public struct TemporalController<Context: TwinRequestContext>: Sendable {
    let service: TemporalService
    let contexts: ContextResolver
    let bodyLimit: Int
    let allowAnonymousWrites: Bool

    public init(service: TemporalService, contexts: ContextResolver, bodyLimit: Int, allowAnonymousWrites: Bool) {
        self.service = service
        self.contexts = contexts
        self.bodyLimit = bodyLimit
        self.allowAnonymousWrites = allowAnonymousWrites
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.get("temporal/entities", use: query)
        group.post("temporal/entities", use: create)
        group.get("temporal/entities/{id}", use: retrieve)
        group.delete("temporal/entities/{id}", use: delete)
        group.post("temporal/entities/{id}/attrs", use: append)
        group.delete("temporal/entities/{id}/attrs/{attr}", use: deleteAttribute)
        group.patch("temporal/entities/{id}/attrs/{attr}/{instanceId}", use: modifyInstance)
        group.delete("temporal/entities/{id}/attrs/{attr}/{instanceId}", use: deleteInstance)
        group.post("temporal/entityOperations/query", use: batchQuery)
    }

    func id(_ context: Context) throws(NGSIError) -> String {
        guard let id = NGSIRequest.path("id", context.parameters), EntityInput.isURI(id) else { throw .badData("the entity id must be a URI") }
        return id
    }

    func attribute(_ context: Context) throws(NGSIError) -> String {
        guard let name = NGSIRequest.path("attr", context.parameters), EntityInput.isValidName(name) else { throw .badData("the attribute name is not valid") }
        return name
    }

    func parameters(_ request: Request) -> TemporalService.Parameters {
        let q = request.uri.queryParameters
        var p = TemporalService.Parameters()
        p.selection.id = q.get("id")
        p.selection.idPattern = q.get("idPattern")
        p.selection.type = q.get("type")
        p.selection.attrs = q.get("attrs")
        p.selection.q = q.get("q")
        p.selection.georel = q.get("georel")
        p.selection.geometry = q.get("geometry")
        p.selection.coordinates = q.get("coordinates")
        p.selection.geoproperty = q.get("geoproperty")
        p.selection.limit = q.get("limit")
        p.selection.offset = q.get("offset")
        p.selection.local = q.get("local") == "true"
        p.timerel = q.get("timerel")
        p.timeAt = q.get("timeAt") ?? q.get("timeat")
        p.endTimeAt = q.get("endTimeAt") ?? q.get("endtimeat")
        p.timeproperty = q.get("timeproperty")
        p.lastN = q.get("lastN") ?? q.get("lastn")
        p.aggrMethods = q.get("aggrMethods")
        p.aggrPeriodDuration = q.get("aggrPeriodDuration")
        p.options = Set((q.get("options") ?? "").split(separator: ",").map(String.init))
        return p
    }

    /// 200, or 206 with `Content-Range: date-time FROM-TO/*` when some attribute's history was cut short.
    func respond(_ type: NGSIRequest.ResponseType, _ ld: LDContext, _ items: [JSON], single: Bool, cut: ClosedRange<Date>?) -> Response {
        var headers: HTTPFields = [:]
        var status = HTTPResponse.Status.ok
        if let cut {
            status = .partialContent
            headers[HTTPField.Name("Content-Range")!] = "date-time \(Timestamp.string(cut.lowerBound))-\(Timestamp.string(cut.upperBound))/*"
        }
        return NGSIResponse(type: type == .geoJSON ? .json : type, context: ld).entities(items, single: single, status: status, extra: headers)
    }

    @Sendable func query(_ request: Request, context: Context) async throws -> Response {
        let type = try NGSIRequest.responseType(request)
        let ld = try await contexts.resolve(try NGSIRequest.queryContext(request))
        let plan = try service.plan(parameters(request), context: ld)
        let (items, cut) = try await service.query(plan, context: ld, tenant: try NGSIRequest.tenant(request))
        return respond(type, ld, items, single: false, cut: cut)
    }

    @Sendable func retrieve(_ request: Request, context: Context) async throws -> Response {
        let type = try NGSIRequest.responseType(request)
        let ld = try await contexts.resolve(try NGSIRequest.queryContext(request))
        var p = parameters(request)
        p.selection = EntityService.QueryParameters()
        p.selection.attrs = request.uri.queryParameters.get("attrs")
        let plan = try service.plan(p, context: ld, requireFilter: false)
        let (item, cut) = try await service.retrieve(try id(context), plan: plan, context: ld, tenant: try NGSIRequest.tenant(request))
        return respond(type, ld, [item], single: true, cut: cut)
    }

    /// `POST /temporal/entityOperations/query`: `{type: "Query", entities, attrs, q, geoQ, temporalQ}`.
    @Sendable func batchQuery(_ request: Request, context: Context) async throws -> Response {
        let type = try NGSIRequest.responseType(request)
        let (json, contextValue) = try await NGSIRequest.body(request, context: context, limit: bodyLimit)
        let ld = try await contexts.resolve(contextValue)
        guard case .object(let body) = json, body["type"]?.stringValue == "Query" else { throw NGSIError.badData("the query must be an object with \"type\": \"Query\"") }
        var p = parameters(request)
        p.selection = try QueryBody.parameters(body, limit: request.uri.queryParameters.get("limit"), offset: request.uri.queryParameters.get("offset"))
        if let temporal = body["temporalQ"] {
            guard case .object(let t) = temporal else { throw NGSIError.badData("temporalQ must be an object") }
            p.timerel = t["timerel"]?.stringValue
            p.timeAt = t["timeAt"]?.stringValue
            p.endTimeAt = t["endTimeAt"]?.stringValue
            p.timeproperty = t["timeproperty"]?.stringValue
            p.lastN = t["lastN"].map { $0.stringValue ?? JSONCoding.string($0) }
        }
        let plan = try service.plan(p, context: ld)
        let (items, cut) = try await service.query(plan, context: ld, tenant: try NGSIRequest.tenant(request))
        return respond(type, ld, items, single: false, cut: cut)
    }

    func writeBody(_ request: Request, _ context: Context) async throws -> (JSON, LDContext, Tenant) {
        try await NGSIRequest.writeBody(request, context: context, limit: bodyLimit, contexts: contexts, anonymousAllowed: allowAnonymousWrites)
    }

    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await writeBody(request, context)
        let (id, created) = try await service.create(json, context: ld, tenant: tenant)
        return created ? Response(status: .created, headers: [.location: "/ngsi-ld/v1/temporal/entities/\(NGSIRequest.segment(id))"]) : NGSIResponse.noContent()
    }

    @Sendable func append(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await writeBody(request, context)
        try await service.append(try id(context), json, context: ld, tenant: tenant)
        return NGSIResponse.noContent()
    }

    func deleting(_ request: Request, _ context: Context) async throws -> (LDContext, Tenant) {
        try NGSIRequest.authorizeWrite(context.principal, anonymousAllowed: allowAnonymousWrites)
        return (try await contexts.resolve(try NGSIRequest.queryContext(request)), try NGSIRequest.tenant(request))
    }

    @Sendable func delete(_ request: Request, context: Context) async throws -> Response {
        let (_, tenant) = try await deleting(request, context)
        try await service.delete(try id(context), tenant: tenant)
        return NGSIResponse.noContent()
    }

    @Sendable func deleteAttribute(_ request: Request, context: Context) async throws -> Response {
        let (ld, tenant) = try await deleting(request, context)
        let p = request.uri.queryParameters
        try await service.deleteAttribute(
            try id(context), attribute: try attribute(context), datasetId: p.get("datasetId"), deleteAll: p.get("deleteAll") == "true", context: ld, tenant: tenant)
        return NGSIResponse.noContent()
    }

    @Sendable func modifyInstance(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await writeBody(request, context)
        try await service.modifyInstance(try id(context), attribute: try attribute(context), instanceId: NGSIRequest.path("instanceId", context.parameters) ?? "", json, context: ld, tenant: tenant)
        return NGSIResponse.noContent()
    }

    @Sendable func deleteInstance(_ request: Request, context: Context) async throws -> Response {
        let (ld, tenant) = try await deleting(request, context)
        try await service.deleteInstance(try id(context), attribute: try attribute(context), instanceId: NGSIRequest.path("instanceId", context.parameters) ?? "", context: ld, tenant: tenant)
        return NGSIResponse.noContent()
    }
}
