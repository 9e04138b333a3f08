import Storage
import Synchronization
import Testing

/// Requests that arrive together are performed together; one the performer refuses fails alone.
@Suite struct CoalescingQueueTests {
    struct Refused: Error {}

    final class Calls: Sendable {
        let sizes = Mutex<[Int]>([])
    }

    @Test func concurrentRequestsAreMergedAndAnsweredInOrder() async throws {
        let calls = Calls()
        let queue = CoalescingQueue<Int, Int>(maximumWeight: 1000, weight: { _ in 1 }) { batch in
            calls.sizes.withLock { $0.append(batch.count) }
            try await Task.sleep(for: .milliseconds(5))
            return batch.map { $0 * 10 }
        }
        let answers = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for n in 0..<200 { group.addTask { (n, try await queue.submit(n)) } }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        #expect(answers.count == 200)
        #expect(answers.allSatisfy { $0.value == $0.key * 10 })
        let sizes = calls.sizes.withLock { $0 }
        #expect(sizes.reduce(0, +) == 200)
        #expect(sizes.count < 200, "some requests were merged: \(sizes)")
    }

    @Test func aRefusedRequestFailsAloneAndTheRestSucceed() async throws {
        let calls = Calls()
        let queue = CoalescingQueue<Int, Int>(maximumWeight: 1000, weight: { _ in 1 }) { batch in
            calls.sizes.withLock { $0.append(batch.count) }
            try await Task.sleep(for: .milliseconds(5))
            if batch.contains(13) { throw Refused() }
            return batch
        }
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for n in 0..<50 {
                group.addTask {
                    do { return (n, try await queue.submit(n) == n) } catch { return (n, false) }
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        #expect(outcomes[13] == false)
        #expect(outcomes.filter { $0.key != 13 }.allSatisfy { $0.value })
    }

    @Test func weightBoundsABatch() async throws {
        let calls = Calls()
        let queue = CoalescingQueue<Int, Int>(maximumWeight: 10, weight: { $0 }) { batch in
            calls.sizes.withLock { $0.append(batch.reduce(0, +)) }
            try await Task.sleep(for: .milliseconds(2))
            return batch
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<40 { group.addTask { _ = try await queue.submit(4) } }
            try await group.waitForAll()
        }
        // A batch holds at most 10 by weight, so at most two requests of 4.
        #expect(calls.sizes.withLock { $0 }.allSatisfy { $0 <= 10 })
    }
}
