import CityKit
import Foundation
import HTTPTypes
import Hummingbird

/// The NGSI-LD entity routes: `/entities`, `/entities/{id}`, `/entities/{id}/attrs…`, `/entityOperations/…`.
public struct EntityController<Context: TwinRequestContext>: Sendable {
    let service: EntityService
    let contexts: ContextResolver
    let bodyLimit: Int
    let allowAnonymousWrites: Bool

    public init(service: EntityService, contexts: ContextResolver, bodyLimit: Int, allowAnonymousWrites: Bool) {
        self.service = service
        self.contexts = contexts
        self.bodyLimit = bodyLimit
        self.allowAnonymousWrites = allowAnonymousWrites
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.post("entities", use: create)
        group.get("entities", use: query)
        group.get("entities/{id}", use: retrieve)
        group.put("entities/{id}", use: replace)
        group.patch("entities/{id}", use: merge)
        group.delete("entities/{id}", use: delete)
        group.post("entities/{id}/attrs", use: append)
        group.patch("entities/{id}/attrs", use: update)
        group.patch("entities/{id}/attrs/{attr}", use: partialUpdate)
        group.put("entities/{id}/attrs/{attr}", use: replaceAttribute)
        group.delete("entities/{id}/attrs/{attr}", use: deleteAttribute)
        group.post("entityOperations/create", use: batchCreate)
        group.post("entityOperations/upsert", use: batchUpsert)
        group.post("entityOperations/update", use: batchUpdate)
        group.post("entityOperations/merge", use: batchMerge)
        group.post("entityOperations/delete", use: batchDelete)
        group.post("entityOperations/query", use: batchQuery)
    }

    // MARK: Shared steps

    func authorizeWrite(_ context: Context) throws(NGSIError) {
        try NGSIRequest.authorizeWrite(context.principal, anonymousAllowed: allowAnonymousWrites)
    }

    func writeBody(_ request: Request, _ context: Context, mergePatch: Bool = false) async throws -> (JSON, LDContext, Tenant) {
        try await NGSIRequest.writeBody(
            request, context: context, limit: bodyLimit, contexts: contexts, anonymousAllowed: allowAnonymousWrites, allowMergePatch: mergePatch)
    }

    func id(_ context: Context) throws(NGSIError) -> String {
        guard let id = NGSIRequest.path("id", context.parameters), !id.isEmpty else { throw .badData("missing entity id") }
        guard EntityInput.isURI(id) else { throw .badData("\(id) is not a valid entity id (a URI)") }
        return id
    }

    func options(_ request: Request) -> Set<String> {
        Set((request.uri.queryParameters.get("options") ?? "").split(separator: ",").map { String($0) })
    }

    func representation(_ request: Request, _ base: Representation) throws(NGSIError) -> Representation {
        var r = base
        let options = options(request)
        r.format = try RepresentationFormat.parse(format: request.uri.queryParameters.get("format"), options: options)
        r.sysAttrs = options.contains("sysAttrs")
        r.lang = request.uri.queryParameters.get("lang")
        return r
    }

    static func partial(_ outcome: EntityService.PartialOutcome) -> Response {
        if outcome.isComplete { return NGSIResponse.noContent() }
        let body: JSON = [
            "updated": .array(outcome.updated.map(JSON.string)),
            "notUpdated": .array(outcome.notUpdated.map { ["attributeName": .string($0.name), "reason": .string($0.reason)] }),
        ]
        return NGSIResponse.json(body, status: HTTPResponse.Status(code: 207, reasonPhrase: "Multi-Status"))
    }

    static func batch(_ outcome: EntityService.BatchOutcome, createdStatus: Bool) -> Response {
        if outcome.errors.isEmpty {
            if createdStatus && !outcome.created.isEmpty {
                return NGSIResponse.json(.array(outcome.created.map(JSON.string)), status: .created)
            }
            return NGSIResponse.noContent()
        }
        let body: JSON = [
            "success": .array((outcome.created + outcome.succeeded).map(JSON.string)),
            "errors": .array(outcome.errors.map { ["entityId": .string($0.id), "error": .object($0.error.problemDetails)] }),
        ]
        return NGSIResponse.json(body, status: HTTPResponse.Status(code: 207, reasonPhrase: "Multi-Status"))
    }

    // MARK: Handlers

    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await writeBody(request, context)
        let id = try await service.create(json, context: ld, tenant: tenant)
        return Response(status: .created, headers: [.location: "/ngsi-ld/v1/entities/\(NGSIRequest.segment(id))"])
    }

    @Sendable func retrieve(_ request: Request, context: Context) async throws -> Response {
        let type = try NGSIRequest.responseType(request)
        let ld = try await contexts.resolve(try NGSIRequest.queryContext(request))
        var parameters = EntityService.QueryParameters()
        parameters.attrs = request.uri.queryParameters.get("attrs")
        parameters.pick = request.uri.queryParameters.get("pick")
        parameters.omit = request.uri.queryParameters.get("omit")
        let (_, base) = try service.plan(parameters, context: ld, requireFilter: false)
        let entity = try await service.retrieve(try id(context), tenant: try NGSIRequest.tenant(request))
        let rendered = try representation(request, base).render(entity, context: ld)
        return NGSIResponse(type: type, context: ld).entities([rendered], single: true, geoproperty: ld.compact(ld.expand(request.uri.queryParameters.get("geometryProperty") ?? "location")))
    }

    @Sendable func query(_ request: Request, context: Context) async throws -> Response {
        let type = try NGSIRequest.responseType(request)
        let ld = try await contexts.resolve(try NGSIRequest.queryContext(request))
        let p = request.uri.queryParameters
        var parameters = EntityService.QueryParameters()
        parameters.id = p.get("id")
        parameters.idPattern = p.get("idPattern")
        parameters.type = p.get("type")
        parameters.attrs = p.get("attrs")
        parameters.pick = p.get("pick")
        parameters.omit = p.get("omit")
        parameters.q = p.get("q")
        parameters.georel = p.get("georel")
        parameters.geometry = p.get("geometry")
        parameters.coordinates = p.get("coordinates")
        parameters.geoproperty = p.get("geoproperty")
        parameters.limit = p.get("limit")
        parameters.offset = p.get("offset")
        parameters.count = p.get("count") == "true" || options(request).contains("count")
        parameters.local = p.get("local") == "true"
        var (plan, base) = try service.plan(parameters, context: ld)
        let tenant = try NGSIRequest.tenant(request)
        let r = try representation(request, base)
        plan.reads = r.reads
        let (entities, count) = try await service.query(plan, tenant: tenant)
        var headers: HTTPFields = [:]
        if let count { headers[NGSIRequest.countHeader] = String(count) }
        if let link = pagingLinks(request, plan: plan, returned: entities.count, total: count) { headers[NGSIRequest.linkHeader] = link }
        let response = NGSIResponse(type: type, context: ld).entities(entities.map { r.render($0, context: ld) }, single: false, extra: headers,
                                                                        geoproperty: ld.compact(ld.expand(p.get("geometryProperty") ?? "location")))
        return response
    }

    /// `rel="next"` / `rel="prev"` links for paging.
    func pagingLinks(_ request: Request, plan: EntityQuery, returned: Int, total: Int?) -> String? {
        var links: [String] = []
        func url(offset: Int) -> String {
            var items = request.uri.queryParameters.filter { $0.key != "offset" }.map { "\($0.key)=\(String($0.value).addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
            items.append("offset=\(offset)")
            if !items.contains(where: { $0.hasPrefix("limit=") }) { items.append("limit=\(plan.limit)") }
            return "<\(request.uri.path)?\(items.joined(separator: "&"))>"
        }
        if plan.offset > 0 { links.append("\(url(offset: max(0, plan.offset - plan.limit))); rel=\"prev\"; type=\"application/json\"") }
        let more = total.map { plan.offset + returned < $0 } ?? (returned == plan.limit && plan.limit > 0)
        if more { links.append("\(url(offset: plan.offset + plan.limit)); rel=\"next\"; type=\"application/json\"") }
        return links.isEmpty ? nil : links.joined(separator: ", ")
    }

    @Sendable func replace(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await writeBody(request, context)
        try await service.replace(try id(context), json, context: ld, tenant: tenant)
        return NGSIResponse.noContent()
    }

    @Sendable func merge(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await writeBody(request, context, mergePatch: true)
        try await service.merge(try id(context), json, context: ld, tenant: tenant)
        return NGSIResponse.noContent()
    }

    @Sendable func delete(_ request: Request, context: Context) async throws -> Response {
        try authorizeWrite(context)
        try await service.delete(try id(context), tenant: try NGSIRequest.tenant(request))
        return NGSIResponse.noContent()
    }

    @Sendable func append(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await writeBody(request, context)
        let outcome = try await service.append(try id(context), json, noOverwrite: options(request).contains("noOverwrite"), context: ld, tenant: tenant)
        return Self.partial(outcome)
    }

    @Sendable func update(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await writeBody(request, context)
        return Self.partial(try await service.update(try id(context), json, context: ld, tenant: tenant))
    }

    func attribute(_ context: Context) throws(NGSIError) -> String {
        guard let name = NGSIRequest.path("attr", context.parameters), !name.isEmpty else { throw .badData("missing attribute name") }
        return name
    }

    @Sendable func partialUpdate(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await writeBody(request, context)
        try await service.partialUpdate(try id(context), attribute: try attribute(context), json, context: ld, tenant: tenant)
        return NGSIResponse.noContent()
    }

    @Sendable func replaceAttribute(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await writeBody(request, context)
        try await service.replaceAttribute(try id(context), attribute: try attribute(context), json, context: ld, tenant: tenant)
        return NGSIResponse.noContent()
    }

    @Sendable func deleteAttribute(_ request: Request, context: Context) async throws -> Response {
        try authorizeWrite(context)
        let ld = try await contexts.resolve(try NGSIRequest.queryContext(request))
        let p = request.uri.queryParameters
        try await service.deleteAttribute(
            try id(context), attribute: try attribute(context), datasetId: p.get("datasetId"), deleteAll: p.get("deleteAll") == "true",
            context: ld, tenant: try NGSIRequest.tenant(request))
        return NGSIResponse.noContent()
    }

    @Sendable func batchCreate(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await writeBody(request, context)
        return Self.batch(try await service.batchCreate(json, context: ld, tenant: tenant), createdStatus: true)
    }

    @Sendable func batchUpsert(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await writeBody(request, context)
        let mode: EntityService.UpsertMode = options(request).contains("update") ? .update : .replace
        return Self.batch(try await service.batchUpsert(json, mode: mode, context: ld, tenant: tenant), createdStatus: true)
    }

    @Sendable func batchUpdate(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await writeBody(request, context)
        return Self.batch(try await service.batchUpdate(json, noOverwrite: options(request).contains("noOverwrite"), context: ld, tenant: tenant), createdStatus: false)
    }

    @Sendable func batchMerge(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await writeBody(request, context)
        return Self.batch(try await service.batchMerge(json, context: ld, tenant: tenant), createdStatus: false)
    }

    @Sendable func batchDelete(_ request: Request, context: Context) async throws -> Response {
        let (json, _, tenant) = try await writeBody(request, context)
        return Self.batch(try await service.batchDelete(json, tenant: tenant), createdStatus: false)
    }

    /// POST /entityOperations/query: a `Query` object `{type: "Query", entities, attrs, q, …}`.
    @Sendable func batchQuery(_ request: Request, context: Context) async throws -> Response {
        let type = try NGSIRequest.responseType(request)
        let tenant = try NGSIRequest.tenant(request)
        let (json, contextValue) = try await NGSIRequest.body(request, context: context, limit: bodyLimit)
        let ld = try await contexts.resolve(contextValue)
        guard case .object(let body) = json else { throw NGSIError.badData("the query must be a JSON object") }
        guard body["type"]?.stringValue == "Query" else { throw NGSIError.badData("the query must have \"type\": \"Query\"") }
        let p = request.uri.queryParameters
        var parameters = try QueryBody.parameters(body, limit: p.get("limit"), offset: p.get("offset"))
        parameters.count = p.get("count") == "true"
        var (plan, base) = try service.plan(parameters, context: ld)
        let r = try representation(request, base)
        plan.reads = r.reads
        let (entities, count) = try await service.query(plan, tenant: tenant)
        var headers: HTTPFields = [:]
        if let count { headers[NGSIRequest.countHeader] = String(count) }
        return NGSIResponse(type: type, context: ld).entities(entities.map { r.render($0, context: ld) }, single: false, extra: headers)
    }
}
