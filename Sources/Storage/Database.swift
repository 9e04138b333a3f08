import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresKit
import PostgresNIO
import SQLKit
import SQLiteKit
import SQLiteNIO
import Synchronization

/// The one database behind the platform: reads on a small set of connections, writes through group commit.
///
/// A write's closure runs inside a transaction shared with other writes that arrived at the same time; it
/// answers only after that transaction has committed and is on disk, so a returned write is durable. A
/// closure that throws is rolled back alone (a savepoint), the others still commit.
public final class Database: Sendable {
    public let kind: DialectKind
    public let logger: Logger
    private let connections: Connections
    private let batcher: WriteBatcher
    private let nextReader = Atomic<Int>(0)
    private let nextLookup = Atomic<Int>(0)
    private let preparation: ConnectionPreparation
    private let attachments = Mutex<[ObjectIdentifier: any Sendable]>([:])
    enum Connections: Sendable {
        /// `lookups` answer reads by key on the caller's thread; `checkpointer` moves the write-ahead log into
        /// the database file, off the writer's path.
        case sqlite(writer: SQLiteInlineConnection, readers: [SQLiteInlineConnection], lookups: [SQLiteInlineConnection], checkpointer: SQLiteConnection)
        case postgres(PostgresClient)
    }

    private init(kind: DialectKind, connections: Connections, logger: Logger, lanes: Int, walSync: WALSync? = nil) {
        self.kind = kind
        self.connections = connections
        self.logger = logger
        let preparation = ConnectionPreparation()
        self.preparation = preparation
        let connectionsCopy = connections
        self.batcher = WriteBatcher(lanes: lanes, kind: kind, logger: logger, walSync: walSync) { body in
            switch connectionsCopy {
            case .sqlite(let writer, _, _, _):
                return try await body(writer)
            case .postgres(let client):
                return try await Self.lease(client, preparation, logger) { try await body($0.sql()) }
            }
        }
    }

    /// A pooled PostgreSQL connection, prepared (see `prepareEachConnection`) before `body` uses it.
    private static func lease<R: Sendable>(
        _ client: PostgresClient, _ preparation: ConnectionPreparation, _ logger: Logger,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> R
    ) async throws -> R {
        try await client.withConnection { connection in
            await preparation.prepare(connection, logger: logger)
            return try await body(connection)
        }
    }

    /// PostgreSQL: a statement each pooled connection runs once, at its first lease, before what it was leased
    /// for (e.g. to set up on a new backend what its first query would otherwise wait for). Nothing on SQLite.
    public func prepareEachConnection(_ sql: String) {
        guard kind == .postgres else { return }
        preparation.add(sql)
    }

    /// The one `T` of this database, made by `make` at first use: what every store opened on the database
    /// shares (e.g. what they keep in memory about its rows).
    public func attachment<T: Sendable>(_ make: () -> T) -> T {
        attachments.withLock { attachments in
            if let existing = attachments[ObjectIdentifier(T.self)] as? T { return existing }
            let made = make()
            attachments[ObjectIdentifier(T.self)] = made
            return made
        }
    }

    /// How much of an SQLite file is memory-mapped (address space, not memory: pages stay in the OS cache).
    static let mmapSize = 16 << 30
    /// The settings of SQLite's reading connections (queries and lookups): reads map the file instead of
    /// copying each page in through a system call.
    static let readerPragmas = ["PRAGMA busy_timeout=10000", "PRAGMA cache_size=-16384", "PRAGMA mmap_size=\(mmapSize)"]

    /// Opens the database. PostgreSQL needs `run()` to be running (it is a `Service`).
    public static func open(_ backend: Backend, logger: Logger = Logger(label: "citytwin.storage")) async throws -> Database {
        switch backend {
        case .sqlite(let path):
            let storage = SQLiteConnection.Storage.file(path: path)
            // Opened first: SQLiteNIO initialises the library the writer shares.
            let checkpointer = try await SQLiteConnection.open(storage: storage, logger: logger)
            _ = try await checkpointer.query("PRAGMA busy_timeout=10000")
            let writer = try SQLiteInlineConnection.open(path: path, logger: logger)
            // A page cache large enough that a big transaction does not spill mid-way; statement journals in memory.
            // A commit writes the log without syncing it; `WALSync` syncs it before the writes are answered.
            for pragma in [
                "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=10000", "PRAGMA foreign_keys=ON",
                "PRAGMA cache_size=-65536", "PRAGMA temp_store=MEMORY",
                // Deleted content is still zeroed on every page a write touches, without writing extra pages for it.
                "PRAGMA secure_delete=FAST",
                // `run()` checkpoints on its own connection; the writer does so itself only if that falls far behind.
                "PRAGMA wal_autocheckpoint=\(fallbackCheckpointPages)",
            ] {
                try await writer.raw(SQLQueryString(pragma)).run()
            }
            try writer.install(SQLiteFunctions.regexp)
            // Queries: their plans may depend on what is bound (e.g. a `LIKE` prefix), so each is planned for its values.
            var readers: [SQLiteInlineConnection] = []
            for _ in 0..<3 {
                let reader = try SQLiteInlineConnection.open(path: path, offloaded: true, keepPlans: false, logger: logger)
                for pragma in readerPragmas { try await reader.raw(SQLQueryString(pragma)).run() }
                try reader.install(SQLiteFunctions.regexp)
                readers.append(reader)
            }
            var lookups: [SQLiteInlineConnection] = []
            for _ in 0..<2 {
                let lookup = try SQLiteInlineConnection.open(path: path, logger: logger)
                for pragma in readerPragmas { try await lookup.raw(SQLQueryString(pragma)).run() }
                try lookup.install(SQLiteFunctions.regexp)
                lookups.append(lookup)
            }
            return Database(
                kind: .sqlite, connections: .sqlite(writer: writer, readers: readers, lookups: lookups, checkpointer: checkpointer),
                logger: logger, lanes: 1, walSync: WALSync(databasePath: path))
        case .postgres(let location):
            var configuration = PostgresClient.Configuration(
                host: location.host, port: location.port, username: location.username,
                password: location.password, database: location.database,
                tls: location.requireTLS ? .require(.makeClientConfiguration()) : .disable)
            configuration.options.maximumConnections = 16
            let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
            return Database(kind: .postgres, connections: .postgres(client), logger: logger, lanes: 4)
        }
    }

    /// Write-ahead log pages after which the SQLite writer checkpoints itself: by then `run()` has copied most
    /// of them, and the writer finishing the rest lets the log start over from its beginning.
    static let fallbackCheckpointPages = 4000
    /// How often `run()` checkpoints SQLite's write-ahead log.
    static let checkpointInterval = Duration.milliseconds(250)

    /// Runs what the database needs in the background until cancelled: PostgreSQL's connection pool; on
    /// SQLite, checkpoints of the write-ahead log (PASSIVE: they never hold up a write), so the writer spends
    /// its time on writes.
    public func run() async {
        switch connections {
        case .sqlite(_, _, _, let checkpointer):
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: Self.checkpointInterval)
                    _ = try await checkpointer.query("PRAGMA wal_checkpoint(PASSIVE)")
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("WAL checkpoint failed", metadata: ["error": "\(error)"])
                }
            }
        case .postgres(let client):
            await client.run()
        }
    }

    /// How many reads can usefully run at once.
    public var readers: Int {
        switch connections {
        case .sqlite(_, let readers, _, _): readers.count
        case .postgres: 4
        }
    }

    /// Runs a read on a reader connection; sees every committed write.
    public func read<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        switch connections {
        case .sqlite(_, let readers, _, _):
            let index = nextReader.add(1, ordering: .relaxed).oldValue
            return try await body(readers[index % readers.count])
        case .postgres(let client):
            return try await Self.lease(client, preparation, logger) { try await body($0.sql()) }
        }
    }

    /// Runs a short read (rows found by key, no scan) and sees every committed write. On SQLite it runs on
    /// the caller's thread, without a hand-off; on PostgreSQL it is a `read`.
    public func lookup<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        switch connections {
        case .sqlite(_, _, let lookups, _):
            let index = nextLookup.add(1, ordering: .relaxed).oldValue
            return try await body(lookups[index % lookups.count])
        case .postgres:
            return try await read(body)
        }
    }

    /// Runs a write inside a group-committed transaction; returns once the commit is on disk.
    public func write<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        let (result, durability) = try await batcher.submit(body)
        try await durability.wait()
        return result
    }

    /// Runs a write inside a group-committed transaction; returns once it has committed (later writes and
    /// reads see it), with what tells when it is on disk. A caller answers its client only after
    /// `Durability.wait()`; meanwhile the writer goes on with the next transaction.
    public func writeCommitted<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> (R, Durability) {
        try await batcher.submit(body)
    }

    /// Runs statements outside the write path, on the writer (schema changes, maintenance).
    public func withWriterConnection<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        switch connections {
        case .sqlite(let writer, _, _, _):
            return try await batcher.exclusive { try await body(writer) }
        case .postgres(let client):
            return try await Self.lease(client, preparation, logger) { try await body($0.sql()) }
        }
    }

    /// Adds a boolean SQL function `name(blob, text)` to every SQLite connection (e.g. an exact spatial
    /// test that a query applies to candidate rows). PostgreSQL has its own functions: nothing is done.
    public func install(_ predicate: SQLitePredicate) async throws {
        guard case .sqlite(let writer, let readers, let lookups, _) = connections else { return }
        try await batcher.exclusive { try writer.install(predicate) }
        for connection in lookups + readers { try connection.install(predicate) }
    }

    /// Runs `handle` for each notification on PostgreSQL channel `channel` (`LISTEN`), from another copy or
    /// this one, until cancelled; reconnects after a lost connection. On SQLite (one process) it only waits.
    public func listen(_ channel: String, _ handle: @escaping @Sendable (String) -> Void) async {
        guard case .postgres(let client) = connections else {
            try? await Task.sleep(for: .seconds(Int64.max / 2))
            return
        }
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: channel) { notifications in
                        for try await notification in notifications { handle(notification.payload) }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("LISTEN \(channel) lost; listening again", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Sends `payload` on channel `channel` to every copy listening, when the caller's transaction commits
    /// (PostgreSQL `pg_notify`; nothing on SQLite, where there is one process).
    public static func notify(_ channel: String, _ payload: String, kind: DialectKind, on db: any SQLDatabase) async throws {
        guard kind == .postgres else { return }
        try await db.raw("SELECT pg_notify(\(bind: channel), \(bind: payload))").run()
    }

    public func close() async {
        switch connections {
        case .sqlite(let writer, let readers, let lookups, let checkpointer):
            for connection in readers + lookups { connection.close() }
            try? await checkpointer.close()
            writer.close()
        case .postgres:
            break
        }
    }
}
