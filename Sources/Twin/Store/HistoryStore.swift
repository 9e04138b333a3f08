import CityKit
import Foundation

/// One attribute instance's history (a series: entity, attribute, datasetId).
public struct SeriesHistory: Sendable, Equatable {
    public let entityID: String
    /// The entity's types as last recorded.
    public let types: [String]
    public let name: String
    public let datasetID: String?
    /// Oldest first, each with `instanceId` and `observedAt` (and `modifiedAt`, the time it was recorded).
    public var instances: [[String: JSON]]
    /// More instances matched than were returned.
    public var truncated: Bool
}

/// One period's aggregates of a series: method → value (null where the method does not apply).
public struct AggregateBucket: Sendable, Equatable {
    public let start: Date
    public let end: Date
    public let values: [AggregationMethod: JSON]
}

public struct SeriesAggregate: Sendable, Equatable {
    public let entityID: String
    public let types: [String]
    public let name: String
    public let datasetID: String?
    public var buckets: [AggregateBucket]
}

/// The entities a temporal query is about, chosen from those with history.
public struct TemporalSelection: Sendable {
    public var ids: [String]?
    public var idPattern: String?
    public var types: TypeExpression?
    public var attrs: [String]?
    /// `q` on history: the entity has, within `window`'s time range (its `timerel` on its `timeProperty`),
    /// instances for which each term held.
    public var q: QExpression?
    public var window = TemporalQuery()
    /// A geo-query on history: the entity has, within `window`'s time range, an instance of the
    /// GeoProperty that satisfies it.
    public var geo: GeoFilter?
    public var limit = 20
    public var offset = 0

    public init() {}
}

/// The twin's history. Writes that come from entity updates are made by the entity store, in the same
/// transaction; these are the reads, and the direct writes of the temporal API.
public protocol HistoryStore: Sendable {
    /// Entities with history that match, by id, with their types.
    func entities(_ selection: TemporalSelection, tenant: Tenant) async throws -> [(id: String, types: [String])]
    func history(of ids: [String], tenant: Tenant, query: TemporalQuery) async throws -> [SeriesHistory]
    func aggregate(_ ids: [String], tenant: Tenant, query: TemporalQuery, aggregation: AggregationQuery) async throws -> [SeriesAggregate]

    /// Adds instances (name expanded → instances) to an entity's history; returns whether the entity had none before.
    func append(_ entityID: String, types: [String], attributes: [String: [[String: JSON]]], tenant: Tenant) async throws -> Bool
    func hasHistory(_ entityID: String, tenant: Tenant) async throws -> Bool
    /// Deletes an entity's history; false if it had none.
    func deleteHistory(of entityID: String, tenant: Tenant) async throws -> Bool
    /// Deletes an attribute's history (one datasetId, or all with `allDatasets`); false if there was none.
    func deleteHistory(of entityID: String, attribute: String, datasetID: String?, allDatasets: Bool, tenant: Tenant) async throws -> Bool
    /// Changes one instance by merging `changes` into it; false if there is no such instance.
    func modifyInstance(_ entityID: String, attribute: String, instanceID: String, changes: [String: JSON], tenant: Tenant) async throws -> Bool
    func deleteInstance(_ entityID: String, attribute: String, instanceID: String, tenant: Tenant) async throws -> Bool
    /// Deletes instances observed before `cutoff`, in all tenants; returns how many.
    func deleteObserved(before cutoff: Date) async throws -> Int
}
