import CityKit
import Foundation
import SQLKit
import Storage
import Synchronization

/// `SubscriptionStore` on SQLite or PostgreSQL (table `subscriptions`).
public struct SQLSubscriptionStore: SubscriptionStore {
    let database: Database

    public init(database: Database) {
        self.database = database
    }

    static let columns: SQLQueryString = """
        tenant, id, body, context, created_at, modified_at, times_sent, times_failed, last_notification, last_success, last_failure
        """

    public func create(_ record: SubscriptionRecord) async throws -> Bool {
        try await database.write { db in
            let inserted = try await db.raw("""
                INSERT INTO subscriptions (tenant, id, body, context, created_at, modified_at)
                VALUES (\(bind: record.tenant.name), \(bind: record.id), \(bind: JSONCoding.string(record.body)), \(bind: record.contextValue.map(JSONCoding.string)),
                    \(bind: History.micros(record.createdAt)), \(bind: History.micros(record.modifiedAt)))
                ON CONFLICT (tenant, id) DO NOTHING RETURNING id
                """).first() != nil
            if inserted { try await self.raiseRevision(on: db) }
            return inserted
        }
    }

    public func retrieve(_ id: String, tenant: Tenant) async throws -> SubscriptionRecord? {
        try await database.read { db in
            try await db.raw("SELECT \(Self.columns) FROM subscriptions WHERE tenant = \(bind: tenant.name) AND id = \(bind: id)").first().map(Self.decode)
        }
    }

    public func list(tenant: Tenant, limit: Int, offset: Int) async throws -> (records: [SubscriptionRecord], total: Int) {
        try await database.read { db in
            let total = try await db.raw("SELECT COUNT(*) AS n FROM subscriptions WHERE tenant = \(bind: tenant.name)").first()?.decode(column: "n", as: Int.self) ?? 0
            guard limit > 0 else { return ([], total) }
            let rows = try await db.raw("""
                SELECT \(Self.columns) FROM subscriptions WHERE tenant = \(bind: tenant.name) ORDER BY id LIMIT \(bind: limit) OFFSET \(bind: offset)
                """).all()
            return (try rows.map(Self.decode), total)
        }
    }

    public func update(_ record: SubscriptionRecord) async throws -> Bool {
        try await database.write { db in
            // A changed period starts afresh; throttling keeps counting from the last notification.
            let updated = try await db.raw("""
                UPDATE subscriptions SET body = \(bind: JSONCoding.string(record.body)), context = \(bind: record.contextValue.map(JSONCoding.string)),
                    modified_at = \(bind: History.micros(record.modifiedAt)), next_periodic = NULL
                WHERE tenant = \(bind: record.tenant.name) AND id = \(bind: record.id) RETURNING id
                """).first() != nil
            if updated { try await self.raiseRevision(on: db) }
            return updated
        }
    }

    public func delete(_ id: String, tenant: Tenant) async throws -> Bool {
        try await database.write { db in
            let deleted = try await db.raw("DELETE FROM subscriptions WHERE tenant = \(bind: tenant.name) AND id = \(bind: id) RETURNING id").first() != nil
            if deleted {
                try await db.raw("DELETE FROM notifications WHERE tenant = \(bind: tenant.name) AND subscription_id = \(bind: id)").run()
                try await self.raiseRevision(on: db)
            }
            return deleted
        }
    }

    // MARK: For the matcher, inside a write transaction

    /// Raises the revision (matchers reload before their next write) and tells the other copies at once.
    func raiseRevision(on db: any SQLDatabase) async throws {
        SubscriptionRevision.localChanges.add(1, ordering: .sequentiallyConsistent)
        try await db.raw("UPDATE subscription_revision SET revision = revision + 1 WHERE id = 1").run()
        try await Database.notify(TwinEvents.channel, TwinEvents.subscriptionsChanged, kind: database.kind, on: db)
    }

    /// The revision of the stored subscriptions, which every change raises (in any copy).
    static func revision(on db: any SQLDatabase) async throws -> Int64 {
        try await db.raw("SELECT revision FROM subscription_revision WHERE id = 1").first()?.decode(column: "revision", as: Int64.self) ?? 0
    }

    /// Every subscription of every tenant.
    static func all(on db: any SQLDatabase) async throws -> [SubscriptionRecord] {
        try await db.raw("SELECT \(columns) FROM subscriptions ORDER BY tenant, id").all().map(decode)
    }

    static func decode(_ row: any SQLRow) throws -> SubscriptionRecord {
        func date(_ column: String) throws -> Date? {
            try row.decodeNil(column: column) ? nil : History.date(try row.decode(column: column, as: Int64.self))
        }
        let context = try row.decode(column: "context", as: String?.self)
        var record = SubscriptionRecord(
            tenant: Tenant(try row.decode(column: "tenant", as: String.self)), id: try row.decode(column: "id", as: String.self),
            body: try JSONCoding.parse(try row.decode(column: "body", as: String.self)),
            contextValue: try context.map { try JSONCoding.parse($0) },
            createdAt: try date("created_at") ?? Date(timeIntervalSince1970: 0), modifiedAt: try date("modified_at") ?? Date(timeIntervalSince1970: 0))
        record.delivery.timesSent = try row.decode(column: "times_sent", as: Int.self)
        record.delivery.timesFailed = try row.decode(column: "times_failed", as: Int.self)
        record.delivery.lastNotification = try date("last_notification")
        record.delivery.lastSuccess = try date("last_success")
        record.delivery.lastFailure = try date("last_failure")
        return record
    }
}

/// Subscription changes made by this process, counted as they are written (before their commit).
///
/// On SQLite this process is the file's only writer, so while this count stays where a matcher last
/// read it, the stored subscriptions are the ones it holds and it need not read the revision. Changes to
/// any database in the process count (several in tests): that only makes matchers read again.
enum SubscriptionRevision {
    static let localChanges = Atomic<Int>(0)
}
