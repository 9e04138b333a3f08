import CityKit
import Testing

/// The consumer takes what waits, oldest first, in batches of at most the maximum; a full queue refuses.
@Suite struct BatchQueueTests {
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
