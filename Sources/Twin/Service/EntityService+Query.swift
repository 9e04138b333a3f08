import CityKit
import Foundation
import Geo

/// Queries (`GET /entities`, `POST /entityOperations/query`) and discovery (`/types`, `/attributes`).
extension EntityService {
    /// The query parameters as the caller wrote them (names not yet expanded).
    public struct QueryParameters: Sendable {
        public var id: String?
        public var idPattern: String?
        public var type: String?
        public var attrs: String?
        public var pick: String?
        public var omit: String?
        public var q: String?
        public var georel: String?
        public var geometry: String?
        /// GeoJSON coordinates as JSON text.
        public var coordinates: String?
        public var geoproperty: String?
        public var limit: String?
        public var offset: String?
        public var count = false
        public var local = false

        public init() {}
    }

    /// Validated, expanded query and the attribute selection for rendering.
    public func plan(_ p: QueryParameters, context: LDContext, requireFilter: Bool = true) throws(NGSIError) -> (EntityQuery, Representation) {
        var query = EntityQuery()
        var representation = Representation()
        if let id = p.id {
            let ids = id.split(separator: ",").map(String.init)
            for i in ids { try Self.checkID(i) }
            query.ids = ids
        }
        if let pattern = p.idPattern {
            guard pattern.count <= 256, RegexSyntax.isValid(pattern) else { throw .badData("idPattern is not a valid regular expression") }
            guard PostgresRegex.isExpressible(pattern) else { throw .badData("idPattern uses \\p, \\k or \\u{…}, which are not supported") }
            query.idPattern = pattern
        }
        if let type = p.type {
            query.types = try TypeExpression.parse(type).mapNames(context.expand)
        }
        if let attrs = p.attrs ?? p.pick {
            let names = try Self.names(attrs, context: context, keepCore: true)
            representation.pick = Set(names.filter { $0 != "id" && $0 != "type" })
            representation.keepID = p.pick == nil || names.contains("id")
            representation.keepType = p.pick == nil || names.contains("type")
            if p.attrs != nil { query.attrs = Array(representation.pick!) }
        }
        if let omit = p.omit {
            let names = try Self.names(omit, context: context, keepCore: true)
            representation.omit = Set(names)
            if names.contains("id") { representation.keepID = false }
            if names.contains("type") { representation.keepType = false }
        }
        if let q = p.q {
            query.q = try QParser.parse(q).mapNames(context.expand)
        }
        if p.georel != nil || p.geometry != nil || p.coordinates != nil {
            query.geo = try Self.geoFilter(p, context: context)
        }
        if requireFilter && query.ids == nil && query.idPattern == nil && query.types == nil && query.attrs == nil && query.q == nil && query.geo == nil && !p.local {
            throw .badData("a query needs at least one of id, idPattern, type, attrs, q, a geo-query or local=true")
        }
        query.count = p.count
        if let limit = p.limit {
            guard let n = Int(limit), n >= 0 else { throw .badData("limit must be a non-negative integer") }
            guard n <= maximumLimit else { throw NGSIError(.tooManyResults, "limit \(n) is above the maximum of \(maximumLimit)") }
            if n == 0 && !p.count { throw .badData("limit=0 needs count=true") }
            query.limit = n
        }
        if let offset = p.offset {
            guard let n = Int(offset), n >= 0 else { throw .badData("offset must be a non-negative integer") }
            query.offset = n
        }
        return (query, representation)
    }

    /// `georel`, `geometry`, `coordinates` and `geoproperty` (default `location`), all checked.
    static func geoFilter(_ p: QueryParameters, context: LDContext) throws(NGSIError) -> GeoFilter {
        guard let georel = p.georel, let type = p.geometry, let text = p.coordinates else {
            throw .badData("a geo-query needs georel, geometry and coordinates")
        }
        guard text.utf8.count <= 1 << 20 else { throw .badData("coordinates are too long") }
        let coordinates: JSON
        do throws(JSONCoding.ParseError) {
            coordinates = try JSONCoding.parse(text)
        } catch {
            throw .badData("coordinates are not JSON: \(error.description)")
        }
        guard Geometry.queryTypes.contains(type) else {
            throw .badData("geometry must be one of \(Geometry.queryTypes.sorted().joined(separator: ", "))")
        }
        let geometry = try GeoJSON.geometry(type: type, coordinates: coordinates, label: "the query geometry")
        let property = p.geoproperty ?? "location"
        guard EntityInput.isValidName(property) else { throw .badData("\(property) is not a valid attribute name") }
        do throws(GeometryError) {
            return GeoFilter(query: try SpatialQuery(relation: SpatialRelation(georel: georel), geometry: geometry), property: context.expand(property))
        } catch {
            throw .badData("geo-query: \(error.description)")
        }
    }

    static func names(_ list: String, context: LDContext, keepCore: Bool) throws(NGSIError) -> [String] {
        var out: [String] = []
        for raw in list.split(separator: ",") {
            let name = String(raw).trimmingCharacters(in: .whitespaces)
            if keepCore && (name == "id" || name == "type") {
                out.append(name)
                continue
            }
            guard EntityInput.isValidName(name) else { throw .badData("\(name) is not a valid attribute name") }
            out.append(context.expand(name))
        }
        return out
    }

    public func query(_ query: EntityQuery, tenant: Tenant) async throws -> (entities: [Entity], count: Int?) {
        try await requireTenant(tenant)
        return try await store.query(query, tenant: tenant)
    }

    public func typeStatistics(tenant: Tenant) async throws -> [TypeStatistics] {
        try await requireTenant(tenant)
        return try await store.typeStatistics(tenant: tenant)
    }
}
