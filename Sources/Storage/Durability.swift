import Synchronization

/// Whether a committed transaction has reached the disk: `wait()` returns once it has, and throws if the
/// disk refused it.
///
/// On SQLite a transaction is committed before its log is synced (see `WALSync`): the next transaction
/// can start at once while the disk catches up, and a caller answers only after `wait()`.
public final class Durability: Sendable {
    private struct State {
        var outcome: Result<Void, any Error>?
        var waiters: [CheckedContinuation<Void, any Error>] = []
        var followers: [@Sendable () -> Void] = []
    }

    private let state: Mutex<State>

    /// Already on disk (PostgreSQL commits synchronously; a rolled back transaction wrote nothing).
    public static let immediate = Durability(done: true)

    init(done: Bool = false) {
        state = Mutex(State(outcome: done ? .success(()) : nil))
    }

    /// Returns once the transaction is on disk.
    public func wait() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome = state.withLock { state -> Result<Void, any Error>? in
                if state.outcome == nil { state.waiters.append(continuation) }
                return state.outcome
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// Runs `body` once the transaction is on disk (never if the disk refused it).
    public func then(_ body: @escaping @Sendable () -> Void) {
        let outcome = state.withLock { state -> Result<Void, any Error>? in
            if state.outcome == nil { state.followers.append(body) }
            return state.outcome
        }
        if case .success = outcome { body() }
    }

    func complete(_ outcome: Result<Void, any Error>) {
        let (waiters, followers) = state.withLock { state in
            state.outcome = outcome
            defer { state.waiters = []; state.followers = [] }
            return (state.waiters, state.followers)
        }
        for waiter in waiters { waiter.resume(with: outcome) }
        if case .success = outcome { for follower in followers { follower() } }
    }
}
