import Logging
import SQLKit
import Synchronization

/// Group commit: gathers concurrent writes into one transaction and one sync.
///
/// Each submitted closure runs in its own savepoint inside the shared transaction, so one that fails is
/// undone alone. Callers resume after the commit, with the transaction's `Durability` (on SQLite the log
/// is synced behind the writer by `WALSync`). Up to `lanes` transactions run at once (one for SQLite,
/// which has a single writer; several for PostgreSQL).
final class WriteBatcher: Sendable {
    typealias Work = @Sendable (any SQLDatabase) async throws -> any Sendable
    typealias WithConnection = @Sendable (@escaping @Sendable (any SQLDatabase) async throws -> Void) async throws -> Void

    struct Job: Sendable {
        let work: Work
        let continuation: CheckedContinuation<(any Sendable, Durability), any Error>
    }

    struct State {
        var pending: [Job] = []
        var running = 0
        var exclusiveWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    private let lanes: Int
    private let kind: DialectKind
    private let logger: Logger
    private let withConnection: WithConnection
    private let walSync: WALSync?
    /// The most writes gathered into one transaction.
    static let maximumBatch = 512

    init(lanes: Int, kind: DialectKind, logger: Logger, walSync: WALSync? = nil, withConnection: @escaping WithConnection) {
        self.lanes = lanes
        self.kind = kind
        self.logger = logger
        self.walSync = walSync
        self.withConnection = withConnection
    }

    /// Runs `body` in the next group transaction; returns once that has committed, with its durability.
    func submit<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> (R, Durability) {
        let (result, durability) = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<(any Sendable, Durability), any Error>) in
            let startLane = state.withLock { state -> Bool in
                state.pending.append(Job(work: { try await body($0) }, continuation: continuation))
                if state.running < lanes {
                    state.running += 1
                    return true
                }
                return false
            }
            if startLane {
                // A lane lives only while there is work queued; it ends when the queue is empty. It runs ahead
                // of request handling, which waits for it.
                Task(priority: .high) { await self.drain() }
            }
        }
        return (result as! R, durability)
    }

    /// Runs `body` while no group transaction is in flight and none starts (SQLite's single writer).
    func exclusive<R: Sendable>(_ body: @Sendable () async throws -> R) async throws -> R {
        while true {
            let acquired = state.withLock { state -> Bool in
                if state.running == 0 {
                    state.running = lanes  // block new lanes
                    return true
                }
                return false
            }
            if acquired { break }
            try await Task.sleep(for: .milliseconds(2))
        }
        defer {
            let restart = state.withLock { state -> Bool in
                state.running = 0
                if !state.pending.isEmpty {
                    state.running = 1
                    return true
                }
                return false
            }
            if restart { Task(priority: .high) { await self.drain() } }
        }
        return try await body()
    }

    private func drain() async {
        while true {
            let batch = state.withLock { state -> [Job] in
                if state.pending.isEmpty {
                    state.running -= 1
                    return []
                }
                let count = min(state.pending.count, Self.maximumBatch)
                let batch = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                return batch
            }
            if batch.isEmpty { return }
            await run(batch)
        }
    }

    private func run(_ batch: [Job]) async {
        let results = Mutex<[Result<any Sendable, any Error>]>([])
        let single = batch.count == 1
        let begin = kind == .sqlite ? "BEGIN IMMEDIATE" : "BEGIN"
        do {
            try await withConnection { db in
                try await db.raw(SQLQueryString(begin)).run()
                do {
                    for job in batch {
                        if single {
                            do {
                                let value = try await job.work(db)
                                results.withLock { $0.append(.success(value)) }
                            } catch {
                                results.withLock { $0.append(.failure(error)) }
                            }
                            continue
                        }
                        try await db.raw("SAVEPOINT w").run()
                        do {
                            let value = try await job.work(db)
                            try await db.raw("RELEASE SAVEPOINT w").run()
                            results.withLock { $0.append(.success(value)) }
                        } catch {
                            try await db.raw("ROLLBACK TO SAVEPOINT w").run()
                            try await db.raw("RELEASE SAVEPOINT w").run()
                            results.withLock { $0.append(.failure(error)) }
                        }
                    }
                    let failedSingle = single && results.withLock { if case .failure = $0.first { true } else { false } }
                    try await db.raw(failedSingle ? "ROLLBACK" : "COMMIT").run()
                } catch {
                    try? await db.raw("ROLLBACK").run()
                    throw error
                }
            }
        } catch {
            logger.error("group commit failed", metadata: ["error": "\(String(reflecting: error))", "writes": "\(batch.count)"])
            for job in batch { job.continuation.resume(throwing: error) }
            return
        }
        let outcome = results.withLock { $0 }
        // A single write that failed was rolled back: nothing of it is in the log.
        let rolledBack = single && { if case .failure = outcome.first { true } else { false } }()
        let durability = rolledBack ? .immediate : walSync?.committed() ?? .immediate
        for (job, result) in zip(batch, outcome) {
            job.continuation.resume(with: result.map { ($0, durability) })
        }
    }
}
