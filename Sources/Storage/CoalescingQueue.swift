import Synchronization

/// Merges requests that arrive while one is being performed into a single call of `perform`.
///
/// Up to `lanes` batches run at a time. Requests that arrive meanwhile wait and then go together, up to `maximumWeight`
/// (each request weighs what `weight` says, e.g. its number of entities). `perform` answers every request of
/// a batch in order. If it throws for a batch of several, each request is performed again alone, so a
/// request whose data the database refuses fails alone and the others still succeed.
public final class CoalescingQueue<Request: Sendable, Response: Sendable>: Sendable {
    public typealias Perform = @Sendable ([Request]) async throws -> [Response]

    struct Waiting: Sendable {
        let request: Request
        let continuation: CheckedContinuation<Response, any Error>
    }

    struct State {
        var pending: [Waiting] = []
        var running = 0
    }

    private let state = Mutex(State())
    private let maximumWeight: Int
    private let lanes: Int
    private let weight: @Sendable (Request) -> Int
    private let perform: Perform

    public init(lanes: Int = 1, maximumWeight: Int, weight: @escaping @Sendable (Request) -> Int, perform: @escaping Perform) {
        self.lanes = lanes
        self.maximumWeight = maximumWeight
        self.weight = weight
        self.perform = perform
    }

    public func submit(_ request: Request) async throws -> Response {
        try await withCheckedThrowingContinuation { continuation in
            let start = state.withLock { state -> Bool in
                state.pending.append(Waiting(request: request, continuation: continuation))
                if state.running >= lanes { return false }
                state.running += 1
                return true
            }
            // Lanes run ahead of request handling: every caller waits for them (SQLite's single writer).
            if start { Task(priority: .high) { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch = state.withLock { state -> [Waiting] in
                var total = 0
                var count = 0
                for waiting in state.pending {
                    let w = weight(waiting.request)
                    if count > 0 && total + w > maximumWeight { break }
                    total += w
                    count += 1
                }
                if count == 0 {
                    state.running -= 1
                    return []
                }
                let batch = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                return batch
            }
            if batch.isEmpty { return }
            await run(batch)
        }
    }

    private func run(_ batch: [Waiting]) async {
        do {
            let responses = try await perform(batch.map(\.request))
            precondition(responses.count == batch.count, "perform must answer every request")
            for (waiting, response) in zip(batch, responses) { waiting.continuation.resume(returning: response) }
        } catch {
            if batch.count == 1 {
                batch[0].continuation.resume(throwing: error)
                return
            }
            for waiting in batch {
                do {
                    let response = try await perform([waiting.request])
                    waiting.continuation.resume(returning: response[0])
                } catch {
                    waiting.continuation.resume(throwing: error)
                }
            }
        }
    }
}
