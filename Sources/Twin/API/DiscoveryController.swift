import CityKit
import Hummingbird

/// `/types`, `/types/{type}`, `/attributes`, `/attributes/{attr}`: what kinds of things the twin holds.
public struct DiscoveryController<Context: TwinRequestContext>: Sendable {
    let service: EntityService
    let contexts: ContextResolver

    public init(service: EntityService, contexts: ContextResolver) {
        self.service = service
        self.contexts = contexts
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.get("types", use: types)
        group.get("types/{type}", use: type)
        group.get("attributes", use: attributes)
        group.get("attributes/{attr}", use: attribute)
    }

    func prepare(_ request: Request) async throws -> (NGSIResponse, [TypeStatistics]) {
        let responseType = try NGSIRequest.responseType(request, allowGeo: false)
        let ld = try await contexts.resolve(try NGSIRequest.queryContext(request))
        let stats = try await service.typeStatistics(tenant: try NGSIRequest.tenant(request))
        return (NGSIResponse(type: responseType, context: ld), stats)
    }

    @Sendable func types(_ request: Request, context: Context) async throws -> Response {
        let (response, stats) = try await prepare(request)
        let ld = response.context
        if request.uri.queryParameters.get("details") == "true" {
            let items: [JSON] = stats.map { s in
                ["id": .string(s.type), "type": "EntityType", "typeName": .string(ld.compact(s.type)),
                 "attributeNames": .array(s.attributes.keys.sorted().map { .string(ld.compact($0)) })]
            }
            return response.entities(items, single: false)
        }
        return response.plain([
            "id": .string("urn:ngsi-ld:EntityTypeList:\(RandomIDGenerator().next())"), "type": "EntityTypeList",
            "typeList": .array(stats.map { .string(ld.compact($0.type)) }),
        ])
    }

    @Sendable func type(_ request: Request, context: Context) async throws -> Response {
        let (response, stats) = try await prepare(request)
        let ld = response.context
        let asked = NGSIRequest.path("type", context.parameters) ?? ""
        let name = ld.expand(asked)
        guard let s = stats.first(where: { $0.type == name }) else { throw NGSIError.notFound("no entities of type \(asked)") }
        return response.plain([
            "id": .string(s.type), "type": "EntityTypeInfo", "typeName": .string(ld.compact(s.type)), "entityCount": .integer(Int64(s.entityCount)),
            "attributeDetails": .array(s.attributes.keys.sorted().map { attribute in
                ["id": .string(attribute), "type": "Attribute", "attributeName": .string(ld.compact(attribute)),
                 "attributeTypes": .array(s.attributes[attribute]!.types.sorted().map(JSON.string))]
            }),
        ])
    }

    /// Attribute name → (types, count, entity types), across all entity types.
    func attributeTable(_ stats: [TypeStatistics]) -> [String: (types: Set<String>, count: Int, typeNames: Set<String>)] {
        var out: [String: (types: Set<String>, count: Int, typeNames: Set<String>)] = [:]
        for s in stats {
            for (name, info) in s.attributes {
                var entry = out[name] ?? ([], 0, [])
                entry.types.formUnion(info.types)
                entry.count += info.count
                entry.typeNames.insert(s.type)
                out[name] = entry
            }
        }
        return out
    }

    func detail(_ name: String, _ entry: (types: Set<String>, count: Int, typeNames: Set<String>), _ ld: LDContext) -> JSON {
        ["id": .string(name), "type": "Attribute", "attributeName": .string(ld.compact(name)), "attributeCount": .integer(Int64(entry.count)),
         "attributeTypes": .array(entry.types.sorted().map(JSON.string)), "typeNames": .array(entry.typeNames.sorted().map { .string(ld.compact($0)) })]
    }

    @Sendable func attributes(_ request: Request, context: Context) async throws -> Response {
        let (response, stats) = try await prepare(request)
        let table = attributeTable(stats)
        if request.uri.queryParameters.get("details") == "true" {
            return response.entities(table.keys.sorted().map { detail($0, table[$0]!, response.context) }, single: false)
        }
        return response.plain([
            "id": .string("urn:ngsi-ld:AttributeList:\(RandomIDGenerator().next())"), "type": "AttributeList",
            "attributeList": .array(table.keys.sorted().map { .string(response.context.compact($0)) }),
        ])
    }

    @Sendable func attribute(_ request: Request, context: Context) async throws -> Response {
        let (response, stats) = try await prepare(request)
        let asked = NGSIRequest.path("attr", context.parameters) ?? ""
        let name = response.context.expand(asked)
        guard let entry = attributeTable(stats)[name] else { throw NGSIError.notFound("no attribute \(asked)") }
        return response.plain(detail(name, entry, response.context))
    }
}
