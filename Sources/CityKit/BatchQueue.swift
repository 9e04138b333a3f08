import Foundation
import Synchronization

/// A bounded first-in, first-out queue whose one consumer takes everything waiting at once (up to a
/// maximum), so that work arriving faster than it is done is done in batches. `push` refuses an element
/// when the queue is full; `push(_:waitingUpTo:)` blocks its thread until there is room.
public final class BatchQueue<Element: Sendable>: Sendable {
    private struct State {
        var elements: [Element] = []
        var head = 0
        var finished = false
        var waiter: CheckedContinuation<Void, Never>?
        /// Producers blocked in `push(_:waitingUpTo:)`, told through `room` when the consumer takes.
        var blockedProducers = 0
        var count: Int { elements.count - head }
    }

    private let state = Mutex(State())
    /// Held by a blocked producer from its look at the queue until it waits, and by whoever wakes it: a
    /// wake-up between the two cannot be missed.
    private let room = NSCondition()
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0, "a queue holds at least one element")
        self.capacity = capacity
    }

    private enum Pushed { case added, full, finished }

    /// Appends `element` unless the queue is finished or full; a caller about to wait for room (`blocking`)
    /// is counted in `blockedProducers` when it is full, under the same lock as the look.
    private func append(_ element: Element, blocking: Bool) -> Pushed {
        let (pushed, waiter) = state.withLock { state -> (Pushed, CheckedContinuation<Void, Never>?) in
            if state.finished { return (.finished, nil) }
            guard state.count < capacity else {
                if blocking { state.blockedProducers += 1 }
                return (.full, nil)
            }
            state.elements.append(element)
            defer { state.waiter = nil }
            return (.added, state.waiter)
        }
        waiter?.resume()
        return pushed
    }

    /// Adds `element` at the end; false (and nothing added) when the queue is full or finished.
    @discardableResult
    public func push(_ element: Element) -> Bool {
        append(element, blocking: false) == .added
    }

    /// Adds `element` at the end, blocking the calling thread while the queue is full, for at most
    /// `patience`: for a producer that would rather slow its source down than drop, such as the thread that
    /// reads an MQTT broker's messages (the broker keeps what it has not yet handed over). False (and
    /// nothing added) when the queue is finished, or still full after `patience`. Not for async code.
    public func push(_ element: Element, waitingUpTo patience: Duration) -> Bool {
        let deadline = Date().addingTimeInterval(patience.seconds)
        room.lock()
        defer { room.unlock() }
        while true {
            switch append(element, blocking: true) {
            case .added: return true
            case .finished: return false
            case .full:
                let woken = room.wait(until: deadline)
                state.withLock { $0.blockedProducers -= 1 }
                if !woken { return push(element) }
            }
        }
    }

    /// Wakes the producers blocked for room, if `blocked` says there are any.
    private func wakeProducers(_ blocked: Bool) {
        guard blocked else { return }
        room.lock()
        room.broadcast()
        room.unlock()
    }

    /// The oldest elements, at most `maximum` of them, waiting until there is one. Nil once the queue is
    /// finished and empty: a consumer drains what was pushed before `finish`, also when its task is
    /// cancelled (whoever cancels it finishes the queue). One consumer at a time.
    public func next(maximum: Int) async -> [Element]? {
        while true {
            let (taken, blocked): ([Element]?, Bool) = state.withLock { state in
                guard state.count > 0 else { return (state.finished ? [] : nil, false) }
                let end = min(state.elements.count, state.head + maximum)
                let batch = Array(state.elements[state.head..<end])
                state.head = end
                // The space of taken elements is given back once they are most of the storage.
                if state.head == state.elements.count {
                    state.elements.removeAll(keepingCapacity: true)
                    state.head = 0
                } else if state.head > 4096 && state.head * 2 > state.elements.count {
                    state.elements.removeFirst(state.head)
                    state.head = 0
                }
                return (batch, state.blockedProducers > 0)
            }
            wakeProducers(blocked)
            if let taken { return taken.isEmpty ? nil : taken }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if state.count > 0 || state.finished { return true }
                    state.waiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        }
    }

    /// No more elements: the consumer takes what is left, then `next` answers nil.
    public func finish() {
        let blocked = state.withLock { state in
            state.finished = true
            return state.blockedProducers > 0
        }
        wake()
        wakeProducers(blocked)
    }

    private func wake() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}
