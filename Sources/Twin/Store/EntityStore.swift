import CityKit
import Foundation
import Geo

/// What one batch step does to one entity.
public enum EntityChange: Sendable, Equatable {
    case unchanged
    case put(Entity)
    case delete
}

/// The twin's current state, per tenant. Every method that writes is one committed transaction.
public protocol EntityStore: Sendable {
    /// Loads the entities with `ids`, lets `change` decide each one's fate (it throws `NGSIError` to fail that
    /// entity alone), and stores the outcome; all in one transaction. `change` sees `nil` for an absent id.
    func apply(
        _ ids: [String], tenant: Tenant,
        _ change: @escaping @Sendable (String, Entity?) throws(NGSIError) -> EntityChange
    ) async throws -> [Result<EntityChange, NGSIError>]

    func retrieve(_ id: String, tenant: Tenant) async throws -> Entity?
    func query(_ query: EntityQuery, tenant: Tenant) async throws -> (entities: [Entity], count: Int?)
    func tenantExists(_ tenant: Tenant) async throws -> Bool
    func tenants() async throws -> [String]
    /// Per entity type: how many entities, and each attribute's name, types and count.
    func typeStatistics(tenant: Tenant) async throws -> [TypeStatistics]
}

public struct TypeStatistics: Sendable, Equatable {
    public let type: String
    public var entityCount: Int
    /// attribute IRI → (attribute types seen, entities having it)
    public var attributes: [String: (types: Set<String>, count: Int)]

    public static func == (a: TypeStatistics, b: TypeStatistics) -> Bool {
        a.type == b.type && a.entityCount == b.entityCount && a.attributes.keys == b.attributes.keys
    }
}

/// A geo-query on one GeoProperty (expanded name).
public struct GeoFilter: Sendable, Equatable {
    public let query: SpatialQuery
    public let property: String

    public init(query: SpatialQuery, property: String) {
        self.query = query
        self.property = property
    }
}

/// What a query reads of each entity it finds.
public enum Reads: Sendable, Equatable {
    case everything
    /// Id, types and system times (e.g. `pick=id,type`).
    case withoutAttributes
    /// The id alone (`pick=id`): answered from the key, without reading the entities' rows.
    case ids
}

/// A query over current state, names already expanded.
public struct EntityQuery: Sendable {
    public var ids: [String]?
    public var idPattern: String?
    public var types: TypeExpression?
    /// Entities must have at least one of these attributes.
    public var attrs: [String]?
    public var q: QExpression?
    public var geo: GeoFilter?
    /// What of each entity the answer shows, and so what is read.
    public var reads = Reads.everything
    public var limit = 20
    public var offset = 0
    public var count = false

    public init() {}
}
