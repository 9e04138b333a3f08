import CityKit
import Foundation

/// How a subscription's notifications have fared (`notification.timesSent` and the rest).
public struct DeliveryStatistics: Sendable, Equatable {
    public var timesSent = 0
    public var timesFailed = 0
    public var lastNotification: Date?
    public var lastSuccess: Date?
    public var lastFailure: Date?

    public init() {}
}

/// A subscription as stored: the body its subscriber wrote, the @context it was written in, and what the
/// broker keeps about it.
public struct SubscriptionRecord: Sendable {
    public var tenant: Tenant
    public var id: String
    /// The subscription as written (a JSON object without `@context`).
    public var body: JSON
    /// The @context value it was written in; nil for the core context.
    public var contextValue: JSON?
    public var createdAt: Date
    public var modifiedAt: Date
    public var delivery = DeliveryStatistics()

    public init(tenant: Tenant, id: String, body: JSON, contextValue: JSON?, createdAt: Date, modifiedAt: Date) {
        self.tenant = tenant
        self.id = id
        self.body = body
        self.contextValue = contextValue
        self.createdAt = createdAt
        self.modifiedAt = modifiedAt
    }
}

/// Subscriptions, per tenant. Every change raises a revision so that matchers (in every copy) reload.
public protocol SubscriptionStore: Sendable {
    /// Stores a new subscription; false when one with its id exists.
    func create(_ record: SubscriptionRecord) async throws -> Bool
    func retrieve(_ id: String, tenant: Tenant) async throws -> SubscriptionRecord?
    /// One page, ordered by id, and the total.
    func list(tenant: Tenant, limit: Int, offset: Int) async throws -> (records: [SubscriptionRecord], total: Int)
    /// Replaces the body and context of a stored subscription; false when there is none.
    func update(_ record: SubscriptionRecord) async throws -> Bool
    /// Deletes a subscription and its undelivered notifications; false when there was none.
    func delete(_ id: String, tenant: Tenant) async throws -> Bool
}
