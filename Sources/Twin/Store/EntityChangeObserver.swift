import CityKit
import SQLKit
import Storage

/// One entity's change in a write: its state before and after (nil when absent).
public struct EntityChangeRecord: Sendable {
    public let id: String
    public let before: Entity?
    public let after: Entity?
}

/// Sees every write of the entity store: inside its transaction, to record what the change causes (the
/// outbox rows of notifications), and once more after the commit, to act on what was recorded.
public protocol EntityChangeObserver: Sendable {
    func record(_ changes: [EntityChangeRecord], tenant: Tenant, kind: DialectKind, on db: any SQLDatabase) async throws -> [OutboxItem]
    func committed(_ items: [OutboxItem])
}
