import CityKit
import Foundation
import Synchronization
import Testing

/// The consumer takes what waits, oldest first, in batches of at most the maximum; a full queue refuses,
/// or blocks a producer that waits for room.
@Suite struct BatchQueueTests {
    /// Runs `body` on a thread of its own (it may block there) and answers its result.
    func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: body()) }.start()
        }
    }

    @Test func aWaitingPushBlocksUntilTheConsumerMakesRoom() async {
        let queue = BatchQueue<Int>(capacity: 2)
        #expect(queue.push(1) && queue.push(2))
        let returned = Flag()
        async let added = onThread {
            defer { returned.set() }
            return queue.push(3, waitingUpTo: .seconds(30))
        }
        try? await Task.sleep(for: .milliseconds(200))
        #expect(!returned.isSet, "the push waits while the queue is full")
        #expect(await queue.next(maximum: 1) == [1])
        let start = ContinuousClock.now
        #expect(await added)
        #expect(ContinuousClock.now - start < .seconds(5), "woken by the taking, not by its patience running out")
        #expect(await queue.next(maximum: 10) == [2, 3])
    }

    @Test func aWaitingPushGivesUpAfterItsPatience() async {
        let queue = BatchQueue<Int>(capacity: 1)
        #expect(queue.push(1))
        let start = ContinuousClock.now
        #expect(await onThread { queue.push(2, waitingUpTo: .milliseconds(150)) } == false)
        #expect(ContinuousClock.now - start >= .milliseconds(150))
        queue.finish()
        #expect(await queue.next(maximum: 10) == [1])
        #expect(await queue.next(maximum: 10) == nil)
    }

    @Test func finishingWakesAWaitingPushWhichAddsNothing() async {
        let queue = BatchQueue<Int>(capacity: 1)
        #expect(queue.push(1))
        async let added = onThread { queue.push(2, waitingUpTo: .seconds(30)) }
        try? await Task.sleep(for: .milliseconds(100))
        let start = ContinuousClock.now
        queue.finish()
        #expect(await added == false)
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(await queue.next(maximum: 10) == [1])
        #expect(await queue.next(maximum: 10) == nil)
    }

    @Test func blockedProducersLoseNothingAndKeepEachOnesOrder() async {
        let queue = BatchQueue<Int>(capacity: 8)
        let producers = (0..<3).map { producer in
            Task { await onThread { (0..<2000).allSatisfy { queue.push(producer * 100_000 + $0, waitingUpTo: .seconds(30)) } } }
        }
        var seen: [Int] = []
        while seen.count < 6000, let batch = await queue.next(maximum: 5) {
            #expect(batch.count <= 5)
            seen += batch
        }
        for producer in producers { #expect(await producer.value) }
        for producer in 0..<3 {
            #expect(seen.filter { $0 / 100_000 == producer } == Array(producer * 100_000..<producer * 100_000 + 2000))
        }
    }

    @Test func takesWhatWaitsInOrderInBatches() async {
        let queue = BatchQueue<Int>(capacity: 10)
        for n in 0..<7 { #expect(queue.push(n)) }
        #expect(await queue.next(maximum: 3) == [0, 1, 2])
        #expect(await queue.next(maximum: 10) == [3, 4, 5, 6])
    }

    @Test func aFullQueueRefusesAndAFinishedOneIsDrainedThenEnds() async {
        let queue = BatchQueue<Int>(capacity: 3)
        #expect(queue.push(1) && queue.push(2) && queue.push(3))
        #expect(!queue.push(4))
        queue.finish()
        #expect(!queue.push(5))
        #expect(await queue.next(maximum: 10) == [1, 2, 3])
        #expect(await queue.next(maximum: 10) == nil)
    }

    @Test func aWaitingConsumerWakesForAnElement() async {
        let queue = BatchQueue<Int>(capacity: 100)
        async let taken = queue.next(maximum: 100)
        try? await Task.sleep(for: .milliseconds(50))
        queue.push(42)
        #expect(await taken == [42])
    }

    @Test func aCancelledConsumerDrainsWhatWasPushedBeforeTheQueueFinished() async {
        let queue = BatchQueue<Int>(capacity: 100)
        let consumer = Task {
            var taken: [Int] = []
            while let batch = await queue.next(maximum: 100) {
                taken += batch
                try? await Task.sleep(for: .milliseconds(20))
            }
            return taken
        }
        queue.push(1)
        try? await Task.sleep(for: .milliseconds(5))
        queue.push(2)
        consumer.cancel()
        queue.push(3)
        queue.finish()
        #expect(!queue.push(4))
        #expect(await consumer.value == [1, 2, 3])
    }

    @Test func manyProducersLoseNothingAndKeepEachOnesOrder() async {
        let queue = BatchQueue<Int>(capacity: 100_000)
        await withTaskGroup(of: Void.self) { group in
            for producer in 0..<4 {
                group.addTask { for n in 0..<5000 { queue.push(producer * 100_000 + n) } }
            }
        }
        queue.finish()
        var seen: [Int] = []
        var batches = 0
        while let batch = await queue.next(maximum: 700) {
            #expect(batch.count <= 700)
            seen += batch
            batches += 1
        }
        #expect(seen.count == 20_000)
        #expect(batches >= 29)
        for producer in 0..<4 {
            let own = seen.filter { $0 / 100_000 == producer }
            #expect(own == Array(producer * 100_000..<producer * 100_000 + 5000))
        }
    }
}

final class Flag: Sendable {
    private let state = Mutex(false)
    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
}
