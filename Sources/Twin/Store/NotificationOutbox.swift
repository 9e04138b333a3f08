import CityKit
import Foundation
import SQLKit
import Storage

/// A notification waiting in the outbox (table `notifications`) until its endpoint has taken it.
public struct OutboxItem: Sendable {
    public var rowID: Int64
    public var tenant: String
    public var subscriptionID: String
    /// `urn:ngsi-ld:Notification:…`, the same on every attempt so that a receiver can drop repeats.
    public var notificationID: String
    public var endpoint: String
    /// Headers and, for `application/ld+json`, the @context of the body, as JSON.
    public var envelope: String
    /// The notified entities as JSON text (an array, or a FeatureCollection for GeoJSON).
    public var data: String
    public var attempts: Int

    public init(
        rowID: Int64, tenant: String, subscriptionID: String, notificationID: String, endpoint: String, envelope: String, data: String, attempts: Int
    ) {
        self.rowID = rowID
        self.tenant = tenant
        self.subscriptionID = subscriptionID
        self.notificationID = notificationID
        self.endpoint = endpoint
        self.envelope = envelope
        self.data = data
        self.attempts = attempts
    }
}

/// The outbox's SQL. Rows are written in the transaction of the change that caused them, claimed by one
/// copy at a time (a lease in `claimed_by`/`claimed_until`, taken with `FOR UPDATE SKIP LOCKED` on
/// PostgreSQL), and deleted once delivered.
public struct NotificationOutbox: Sendable {
    let database: Database
    /// This copy's name in `claimed_by`.
    public let copy: String

    public init(database: Database, copy: String) {
        self.database = database
        self.copy = copy
    }

    /// Inserts notifications (within the caller's transaction), claimed by `copy` until `leaseUntil` (or
    /// unclaimed when `copy` is nil). Returns them with their row ids.
    static func enqueue(_ items: [OutboxItem], copy: String?, leaseUntil: Int64, now: Int64, kind: DialectKind, on db: any SQLDatabase) async throws -> [OutboxItem] {
        var out: [OutboxItem] = []
        for chunk in items.chunked(500) {
            let json = JSONCoding.string(.array(chunk.map { [.string($0.tenant), .string($0.subscriptionID), .string($0.notificationID), .string($0.endpoint), .string($0.envelope), .string($0.data)] }))
            let source: SQLQueryString = kind == .postgres
                ? "SELECT j->>0, j->>1, j->>2, j->>3, j->>4, j->>5 FROM jsonb_array_elements(CAST(\(bind: json) AS jsonb)) AS j"
                : "SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5 FROM json_each(\(bind: json)) AS j"
            let rows = try await db.raw("""
                INSERT INTO notifications (tenant, subscription_id, notification_id, endpoint, envelope, data, created, next_attempt, claimed_by, claimed_until)
                SELECT s.*, \(bind: now), \(bind: now), \(bind: copy), \(bind: copy == nil ? nil : leaseUntil) FROM (
                """ + source + ") AS s RETURNING id, notification_id").all()
            var ids: [String: Int64] = [:]
            for row in rows { ids[try row.decode(column: "notification_id", as: String.self)] = try row.decode(column: "id", as: Int64.self) }
            for var item in chunk {
                item.rowID = ids[item.notificationID] ?? 0
                out.append(item)
            }
        }
        return out
    }

    /// Claims up to `limit` due notifications that no live lease holds, skipping `excluded` endpoints.
    public func claim(limit: Int, excluding excluded: [String], now: Date, lease: Duration) async throws -> [OutboxItem] {
        let kind = database.kind
        let (nowMicros, until, copy) = (History.micros(now), History.micros(now.addingTimeInterval(lease.seconds)), self.copy)
        return try await database.write { db in
            var due: SQLQueryString = "SELECT id FROM notifications WHERE next_attempt <= \(bind: nowMicros) AND (claimed_until IS NULL OR claimed_until < \(bind: nowMicros))"
            if !excluded.isEmpty { due = due + " AND endpoint NOT IN (\(binds: excluded))" }
            due = due + " ORDER BY id LIMIT \(bind: limit)" + (kind == .postgres ? " FOR UPDATE SKIP LOCKED" : "")
            let rows = try await db.raw("""
                UPDATE notifications SET claimed_by = \(bind: copy), claimed_until = \(bind: until) WHERE id IN (
                """ + due + ") RETURNING " + Self.columns).all()
            return try rows.map(Self.decode).sorted { $0.rowID < $1.rowID }
        }
    }

    /// The outcome of attempts, written together: delivered rows go, failed ones wait until `retryAt` (or go
    /// when `dropped`), and each subscription's statistics move on.
    public struct Outcome: Sendable {
        public var delivered: [OutboxItem] = []
        public var failed: [(item: OutboxItem, retryAt: Date?)] = []
        /// Rows put back without an attempt (their endpoint is resting after a failure).
        public var deferred: [(item: OutboxItem, retryAt: Date)] = []
        public var at = Date()

        public var isEmpty: Bool { delivered.isEmpty && failed.isEmpty && deferred.isEmpty }
    }

    public func record(_ outcome: Outcome) async throws {
        guard !outcome.isEmpty else { return }
        let at = History.micros(outcome.at)
        let kind = database.kind
        try await database.write { db in
            // Each statement changes other rows, so on PostgreSQL they go as one.
            var statements = StatementGroup(kind, on: db)
            let gone = outcome.delivered.map(\.rowID) + outcome.failed.filter { $0.retryAt == nil }.map(\.item.rowID)
            for chunk in gone.chunked(500) {
                try await statements.append("DELETE FROM notifications WHERE id IN (\(binds: chunk))")
            }
            let retries = Dictionary(grouping: outcome.failed.compactMap { f in f.retryAt.map { (f.item.rowID, History.micros($0)) } }, by: \.1)
            for (retryAt, rows) in retries {
                for chunk in rows.map(\.0).chunked(500) {
                    try await statements.append("""
                        UPDATE notifications SET attempts = attempts + 1, next_attempt = \(bind: retryAt), claimed_by = NULL, claimed_until = NULL WHERE id IN (\(binds: chunk))
                        """)
                }
            }
            let deferred = Dictionary(grouping: outcome.deferred.map { ($0.item.rowID, History.micros($0.retryAt)) }, by: \.1)
            for (retryAt, rows) in deferred {
                for chunk in rows.map(\.0).chunked(500) {
                    try await statements.append("UPDATE notifications SET next_attempt = \(bind: retryAt), claimed_by = NULL, claimed_until = NULL WHERE id IN (\(binds: chunk))")
                }
            }
            if let count = Self.count(outcome, at: at, kind: kind) { try await statements.append(count) }
            try await statements.run()
        }
    }

    /// The statement that moves each subscription's statistics on (nil when none moves): `[tenant, id, sent, failed]` rows as JSON.
    static func count(_ outcome: Outcome, at: Int64, kind: DialectKind) -> SQLQueryString? {
        struct Key: Hashable { let tenant: String, id: String }
        var sent: [Key: (ok: Int, failed: Int)] = [:]
        for item in outcome.delivered { sent[Key(tenant: item.tenant, id: item.subscriptionID), default: (0, 0)].ok += 1 }
        for (item, _) in outcome.failed { sent[Key(tenant: item.tenant, id: item.subscriptionID), default: (0, 0)].failed += 1 }
        guard !sent.isEmpty else { return nil }
        let json = JSONCoding.string(.array(sent.map { key, n in [.string(key.tenant), .string(key.id), .integer(Int64(n.ok)), .integer(Int64(n.failed))] }))
        let rows: SQLQueryString = kind == .postgres
            ? "SELECT j->>0 AS tenant, j->>1 AS id, (j->>2)::bigint AS ok, (j->>3)::bigint AS failed FROM jsonb_array_elements(CAST(\(bind: json) AS jsonb)) AS j"
            : "SELECT j.value ->> 0 AS tenant, j.value ->> 1 AS id, j.value ->> 2 AS ok, j.value ->> 3 AS failed FROM json_each(\(bind: json)) AS j"
        return """
            UPDATE subscriptions SET times_sent = times_sent + v.ok + v.failed, times_failed = times_failed + v.failed, last_notification = \(bind: at),
                last_success = CASE WHEN v.ok > 0 THEN \(bind: at) ELSE last_success END,
                last_failure = CASE WHEN v.failed > 0 THEN \(bind: at) ELSE last_failure END
            FROM (
            """ + rows + ") AS v WHERE subscriptions.tenant = v.tenant AND subscriptions.id = v.id"
    }

    /// Extends this copy's leases (the rows it holds in memory).
    public func renewLeases(until: Date) async throws {
        let (until, copy) = (History.micros(until), self.copy)
        try await database.write { db in
            try await db.raw("UPDATE notifications SET claimed_until = \(bind: until) WHERE claimed_by = \(bind: copy)").run()
        }
    }

    /// Gives back this copy's claims (at shutdown), or with `everyCopy` every claim (on start, when this is the
    /// only process that can use the database: SQLite).
    public func releaseClaims(everyCopy: Bool = false) async throws {
        let (copy, kind) = (self.copy, database.kind)
        try await database.write { db in
            if everyCopy {
                try await db.raw("UPDATE notifications SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by IS NOT NULL").run()
            } else {
                try await db.raw("UPDATE notifications SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = \(bind: copy)").run()
                try await Database.notify(TwinEvents.channel, TwinEvents.outboxWaiting, kind: kind, on: db)
            }
        }
    }

    /// Every notification waiting, whoever holds it, oldest first.
    public func pending(limit: Int = 10_000) async throws -> [OutboxItem] {
        try await database.read { db in
            try await db.raw("SELECT \(Self.columns) FROM notifications ORDER BY id LIMIT \(bind: limit)").all().map(Self.decode)
        }
    }

    static let columns: SQLQueryString = "id, tenant, subscription_id, notification_id, endpoint, envelope, data, attempts"

    static func decode(_ row: any SQLRow) throws -> OutboxItem {
        OutboxItem(
            rowID: try row.decode(column: "id", as: Int64.self), tenant: try row.decode(column: "tenant", as: String.self),
            subscriptionID: try row.decode(column: "subscription_id", as: String.self),
            notificationID: try row.decode(column: "notification_id", as: String.self), endpoint: try row.decode(column: "endpoint", as: String.self),
            envelope: try row.decode(column: "envelope", as: String.self), data: try row.decode(column: "data", as: String.self),
            attempts: try row.decode(column: "attempts", as: Int.self))
    }
}
