import CityKit
import Foundation
import Hummingbird

/// `/jsonldContexts`: list, add (host), get, delete and reload the @contexts the broker keeps.
public struct ContextController<Context: TwinRequestContext>: Sendable {
    let resolver: ContextResolver
    let store: any ContextStore
    let bodyLimit: Int
    let allowAnonymousWrites: Bool

    public init(resolver: ContextResolver, store: any ContextStore, bodyLimit: Int, allowAnonymousWrites: Bool) {
        self.resolver = resolver
        self.store = store
        self.bodyLimit = bodyLimit
        self.allowAnonymousWrites = allowAnonymousWrites
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.get("jsonldContexts", use: list)
        group.post("jsonldContexts", use: add)
        group.get("jsonldContexts/{contextId}", use: get)
        group.delete("jsonldContexts/{contextId}", use: delete)
    }

    /// A context's details; `numberOfHits` and `lastUsage` count the requests that used it since the server started.
    func details(_ c: StoredContext) -> JSON {
        var out: [String: JSON] = ["URL": .string(c.url), "localId": .string(c.id), "kind": .string(c.kind.rawValue), "createdAt": .string(Timestamp.string(c.createdAt))]
        let usage = resolver.usage(of: c.url)
        out["numberOfHits"] = .integer(Int64(usage?.hits ?? 0))
        if let last = usage?.lastUsage { out["lastUsage"] = .string(Timestamp.string(last)) }
        return .object(out)
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let p = request.uri.queryParameters
        var items = try await store.list()
        if let kind = p.get("kind") {
            guard let wanted = StoredContext.Kind(rawValue: kind) else { throw NGSIError.badData("kind must be Hosted, Cached or ImplicitlyCreated") }
            items = items.filter { $0.kind == wanted }
        }
        let body: JSON = p.get("details") == "true" ? .array(items.map(details)) : .array(items.map { .string($0.url) })
        return NGSIResponse.json(body)
    }

    @Sendable func add(_ request: Request, context: Context) async throws -> Response {
        try NGSIRequest.authorizeWrite(context.principal, anonymousAllowed: allowAnonymousWrites)
        let type = NGSIRequest.mediaType(request.headers[.contentType])
        guard type == "application/json" || type == "application/ld+json" else {
            throw NGSIError(.unsupportedMediaType, "Content-Type must be application/json or application/ld+json")
        }
        let json = try await NGSIRequest.readJSON(request, limit: bodyLimit)
        guard case .object(let object) = json, let inner = object["@context"] else { throw NGSIError.badData("the body must be an object with @context") }
        switch inner {
        case .object, .array, .string: break
        default: throw NGSIError.badData("@context must be an object, an array or a URL")
        }
        // Check that it resolves (imports reachable, definitions well-formed) before keeping it.
        _ = try await resolver.resolve(inner, implicit: false)
        let id = RandomIDGenerator().next()
        let url = resolver.hostedBase + id
        try await store.save(StoredContext(id: id, url: url, document: json, kind: .hosted, createdAt: Date()))
        return Response(status: .created, headers: [.location: "/ngsi-ld/v1/jsonldContexts/\(NGSIRequest.segment(id))"])
    }

    func find(_ context: Context) async throws -> StoredContext {
        guard let key = NGSIRequest.path("contextId", context.parameters) else { throw NGSIError.badData("missing context id") }
        let found = key.contains("://") ? try await store.find(url: key) : try await store.find(id: key)
        guard let found else { throw NGSIError.notFound("no @context \(key)") }
        return found
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        let found = try await find(context)
        if request.uri.queryParameters.get("details") == "true" { return NGSIResponse.json(details(found)) }
        return NGSIResponse.json(found.document, headers: [.contentType: "application/ld+json"])
    }

    @Sendable func delete(_ request: Request, context: Context) async throws -> Response {
        try NGSIRequest.authorizeWrite(context.principal, anonymousAllowed: allowAnonymousWrites)
        let found = try await find(context)
        if request.uri.queryParameters.get("reload") == "true" {
            guard found.kind == .cached else { throw NGSIError.badData("only cached contexts can be reloaded") }
            _ = try await store.delete(id: found.id)
            resolver.invalidate(url: found.url)
            _ = try await resolver.fetchDocument(found.url)
            return NGSIResponse.noContent()
        }
        _ = try await store.delete(id: found.id)
        resolver.invalidate(url: found.url)
        return NGSIResponse.noContent()
    }
}
