import Logging
import PostgresNIO
import Synchronization

/// Statements that every PostgreSQL connection of the pool runs once, the first time it is leased, before
/// the work it was leased for: so that what a backend sets up on first use (a library loaded, a cache
/// filled) is not paid by whichever query happens to meet a new connection.
///
/// The statements must be harmless to run twice. One that fails (e.g. before the migration that makes
/// what it uses) is tried again at the connection's next leases, `attempts` times in all, then skipped on
/// that connection.
final class ConnectionPreparation: Sendable {
    private struct Progress {
        /// How many of `statements` the connection has run (or skipped).
        var done = 0
        /// Failures of the statement at `done`.
        var failures = 0
    }

    private struct State {
        var statements: [String] = []
        var connections: [PostgresConnection.ID: Progress] = [:]
    }

    private let state = Mutex(State())
    static let attempts = 3
    /// Connections the pool closed stay in the table; past this many it starts over (the statements may
    /// then run again on a connection).
    static let remembered = 1024

    /// Adds a statement; one added before (e.g. by a store opened twice on one database) is not added again.
    func add(_ sql: String) {
        state.withLock { state in
            if !state.statements.contains(sql) { state.statements.append(sql) }
        }
    }

    /// Runs on `connection` the statements it has not run yet.
    func prepare(_ connection: PostgresConnection, logger: Logger) async {
        let (pending, start) = state.withLock { state -> ([String], Progress) in
            let progress = state.connections[connection.id] ?? Progress()
            return (Array(state.statements.dropFirst(progress.done)), progress)
        }
        guard !pending.isEmpty else { return }
        var progress = start
        for sql in pending {
            do {
                for try await _ in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger) {}
                progress = Progress(done: progress.done + 1)
            } catch {
                progress.failures += 1
                logger.debug("connection preparation failed", metadata: ["sql": "\(sql)", "error": "\(String(reflecting: error))"])
                if progress.failures < Self.attempts { break }
                logger.warning("connection preparation skipped", metadata: ["sql": "\(sql)", "error": "\(String(reflecting: error))"])
                progress = Progress(done: progress.done + 1)
            }
        }
        let reached = progress
        state.withLock { state in
            if state.connections.count >= Self.remembered { state.connections = [:] }
            state.connections[connection.id] = reached
        }
    }
}
