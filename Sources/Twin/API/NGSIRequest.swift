import Foundation
import CityKit
import HTTPTypes
import Hummingbird
import NIOCore

/// What an NGSI-LD request says about formats, @context and tenant, read from its headers and body.
struct NGSIRequest {
    enum ResponseType { case json, ldJSON, geoJSON }

    static let linkRelation = "http://www.w3.org/ns/json-ld#context"
    static let linkHeader = HTTPField.Name("Link")!
    static let tenantHeader = HTTPField.Name("NGSILD-Tenant")!
    static let countHeader = HTTPField.Name("NGSILD-Results-Count")!

    /// A path parameter, percent-decoded: clients send `urn:ngsi-ld:Road:深南` as
    /// `urn:ngsi-ld:Road:%E6%B7%B1%E5%8D%97`. Nil when absent or not valid percent-encoding.
    static func path(_ name: String, _ parameters: Parameters) -> String? {
        parameters.get(name).flatMap { $0.utf8.contains(UInt8(ascii: "%")) ? $0.removingPercentEncoding : $0 }
    }

    /// `id` as one path segment of a URL (a `Location`): percent-encoded where a path needs it (Chinese text,
    /// `/`, `?`, `#`, `%`), the inverse of `path`.
    static func segment(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: segmentCharacters) ?? id
    }

    private static let segmentCharacters = CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#%;"))

    /// The tenant named by `NGSILD-Tenant`, or the default.
    static func tenant(_ request: Request) throws(NGSIError) -> Tenant {
        guard let name = request.headers[tenantHeader], !name.isEmpty else { return .default }
        guard Tenant.validate(name) else { throw .badData("invalid tenant name \(name)") }
        return Tenant(name)
    }

    /// The @context URL from a `Link` header with the JSON-LD context relation.
    static func linkContext(_ request: Request) throws(NGSIError) -> String? {
        guard let link = request.headers[NGSIRequest.linkHeader] else { return nil }
        for part in link.split(separator: ",") {
            let text = part.trimmingCharacters(in: .whitespaces)
            guard text.hasPrefix("<"), let close = text.firstIndex(of: ">") else { continue }
            let url = String(text[text.index(after: text.startIndex)..<close])
            let params = text[text.index(after: close)...]
            if params.contains(linkRelation) { return url }
        }
        throw .badData("the Link header does not name a JSON-LD context")
    }

    static func mediaType(_ value: String?) -> String? {
        value.map { $0.split(separator: ";")[0].trimmingCharacters(in: .whitespaces).lowercased() }
    }

    /// What every write starts with: the caller may write, the tenant, the body and its resolved @context.
    static func writeBody(
        _ request: Request, context: some TwinRequestContext, limit: Int, contexts: ContextResolver, anonymousAllowed: Bool, allowMergePatch: Bool = false
    ) async throws -> (JSON, LDContext, Tenant) {
        try authorizeWrite(context.principal, anonymousAllowed: anonymousAllowed)
        let tenant = try self.tenant(request)
        let (json, contextValue) = try await body(request, context: context, limit: limit, allowMergePatch: allowMergePatch)
        return (json, try await contexts.resolve(contextValue), tenant)
    }

    /// Checks `Content-Type` and the @context rules, returning the body and the context value to resolve.
    static func body(
        _ request: Request, context: some RequestContext, limit: Int, allowMergePatch: Bool = false
    ) async throws -> (json: JSON, contextValue: JSON?) {
        let type = mediaType(request.headers[.contentType])
        let allowed = ["application/json", "application/ld+json"] + (allowMergePatch ? ["application/merge-patch+json"] : [])
        guard let type, allowed.contains(type) else {
            throw NGSIError(.unsupportedMediaType, "Content-Type must be \(allowed.joined(separator: " or "))")
        }
        let json = try await readJSON(request, limit: limit)
        let link = try linkContext(request)
        let inline = inlineContext(json)
        if type == "application/ld+json" {
            if link != nil { throw NGSIError.badData("with application/ld+json the @context goes in the body, not in a Link header") }
            guard let inline else { throw NGSIError.badData("application/ld+json needs @context in the body") }
            return (json, inline)
        }
        if inline != nil { throw NGSIError.badData("with application/json the @context goes in a Link header, not in the body") }
        return (json, link.map(JSON.string))
    }

    /// Reads the body within `limit` bytes and parses it as JSON.
    static func readJSON(_ request: Request, limit: Int) async throws -> JSON {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw NGSIError(.payloadTooLarge, "the body is \(length) bytes; at most \(limit) are accepted")
        }
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch {
            throw NGSIError(.payloadTooLarge, "the body is larger than \(limit) bytes")
        }
        do {
            return try JSONCoding.parse(Data(buffer.readableBytesView))
        } catch {
            throw NGSIError.invalid("the body is not valid JSON: \(error)")
        }
    }

    /// Writes need a principal with a writing role, unless the server allows anonymous writes.
    static func authorizeWrite(_ principal: Principal, anonymousAllowed: Bool) throws(NGSIError) {
        if anonymousAllowed || principal.canWrite { return }
        if principal.kind == .anonymous { throw NGSIError(.unauthorized, "writes need an API key or a bearer token") }
        throw NGSIError(.forbidden, "\(principal.id) may not make this change")
    }

    /// The @context of a body: the object's, or for an array the first item's.
    static func inlineContext(_ json: JSON) -> JSON? {
        switch json {
        case .object(let o): return o["@context"]
        case .array(let items): return items.lazy.compactMap { $0["@context"] }.first
        default: return nil
        }
    }

    /// The context value of a request without a body (Link header or none).
    static func queryContext(_ request: Request) throws(NGSIError) -> JSON? {
        try linkContext(request).map(JSON.string)
    }

    /// The representation the client accepts.
    static func responseType(_ request: Request, allowGeo: Bool = true) throws(NGSIError) -> ResponseType {
        guard let accept = request.headers[.accept], !accept.isEmpty else { return .json }
        var ranked: [(String, Double)] = []
        for part in accept.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            var q = 1.0
            for p in pieces.dropFirst() where p.hasPrefix("q=") { q = Double(p.dropFirst(2)) ?? 1 }
            ranked.append((pieces[0], q))
        }
        for (type, q) in ranked.sorted(by: { $0.1 > $1.1 }) where q > 0 {
            switch type {
            case "application/json", "*/*", "application/*": return .json
            case "application/ld+json": return .ldJSON
            case "application/geo+json" where allowGeo: return .geoJSON
            default: continue
            }
        }
        throw NGSIError(.notAcceptable, "this resource is available as application/json, application/ld+json\(allowGeo ? " or application/geo+json" : "")")
    }
}
