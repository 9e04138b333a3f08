import CityKit
import Foundation
import HTTPTypes
import Hummingbird

/// The NGSI-LD subscription routes: `/subscriptions` and `/subscriptions/{id}`.
public struct SubscriptionController<Context: TwinRequestContext>: Sendable {
    let service: SubscriptionService
    let contexts: ContextResolver
    let bodyLimit: Int
    let allowAnonymousWrites: Bool

    public init(service: SubscriptionService, contexts: ContextResolver, bodyLimit: Int, allowAnonymousWrites: Bool) {
        self.service = service
        self.contexts = contexts
        self.bodyLimit = bodyLimit
        self.allowAnonymousWrites = allowAnonymousWrites
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.post("subscriptions", use: create)
        group.get("subscriptions", use: list)
        group.get("subscriptions/{id}", use: retrieve)
        group.patch("subscriptions/{id}", use: update)
        group.delete("subscriptions/{id}", use: delete)
    }

    func id(_ context: Context) throws(NGSIError) -> String {
        guard let id = NGSIRequest.path("id", context.parameters), EntityInput.isURI(id) else { throw .badData("the subscription id must be a URI") }
        return id
    }

    func sysAttrs(_ request: Request) -> Bool {
        (request.uri.queryParameters.get("options") ?? "").split(separator: ",").contains("sysAttrs")
    }

    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await NGSIRequest.writeBody(request, context: context, limit: bodyLimit, contexts: contexts, anonymousAllowed: allowAnonymousWrites)
        let id = try await service.create(json, context: ld, tenant: tenant)
        return Response(status: .created, headers: [.location: "/ngsi-ld/v1/subscriptions/\(NGSIRequest.segment(id))"])
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let type = try NGSIRequest.responseType(request, allowGeo: false)
        let ld = try await contexts.resolve(try NGSIRequest.queryContext(request))
        let parameters = request.uri.queryParameters
        let page = try await service.list(tenant: try NGSIRequest.tenant(request), limit: parameters.get("limit"), offset: parameters.get("offset"))
        var extra: HTTPFields = [:]
        if parameters.get("count") == "true" { extra[NGSIRequest.countHeader] = String(page.total) }
        let items = page.records.map { service.render($0, sysAttrs: sysAttrs(request)) }
        return NGSIResponse(type: type, context: ld).entities(items, single: false, extra: extra)
    }

    @Sendable func retrieve(_ request: Request, context: Context) async throws -> Response {
        let type = try NGSIRequest.responseType(request, allowGeo: false)
        let ld = try await contexts.resolve(try NGSIRequest.queryContext(request))
        let record = try await service.retrieve(try id(context), tenant: try NGSIRequest.tenant(request))
        return NGSIResponse(type: type, context: ld).entities([service.render(record, sysAttrs: sysAttrs(request))], single: true)
    }

    @Sendable func update(_ request: Request, context: Context) async throws -> Response {
        let (json, ld, tenant) = try await NGSIRequest.writeBody(
            request, context: context, limit: bodyLimit, contexts: contexts, anonymousAllowed: allowAnonymousWrites, allowMergePatch: true)
        try await service.update(try id(context), json, context: ld, tenant: tenant)
        return NGSIResponse.noContent()
    }

    @Sendable func delete(_ request: Request, context: Context) async throws -> Response {
        try NGSIRequest.authorizeWrite(context.principal, anonymousAllowed: allowAnonymousWrites)
        try await service.delete(try id(context), tenant: try NGSIRequest.tenant(request))
        return NGSIResponse.noContent()
    }
}
