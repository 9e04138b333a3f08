import Synchronization

/// A bounded first-in, first-out queue whose one consumer takes everything waiting at once (up to a
/// maximum), so that work arriving faster than it is done is done in batches. Producers never wait: `push`
/// refuses an element when the queue is full.
public final class BatchQueue<Element: Sendable>: Sendable {
    private struct State {
        var elements: [Element] = []
        var head = 0
        var finished = false
        var waiter: CheckedContinuation<Void, Never>?
        var count: Int { elements.count - head }
    }

    private let state = Mutex(State())
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0, "a queue holds at least one element")
        self.capacity = capacity
    }

    /// Adds `element` at the end; false (and nothing added) when the queue is full or finished.
    @discardableResult
    public func push(_ element: Element) -> Bool {
        let (added, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard !state.finished, state.count < capacity else { return (false, nil) }
            state.elements.append(element)
            defer { state.waiter = nil }
            return (true, state.waiter)
        }
        waiter?.resume()
        return added
    }

    /// The oldest elements, at most `maximum` of them, waiting until there is one. Nil once the queue is
    /// finished and empty: a consumer drains what was pushed before `finish`, also when its task is
    /// cancelled (whoever cancels it finishes the queue). One consumer at a time.
    public func next(maximum: Int) async -> [Element]? {
        while true {
            let taken: [Element]? = state.withLock { state in
                guard state.count > 0 else { return state.finished ? [] : nil }
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
                return batch
            }
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
        state.withLock { $0.finished = true }
        wake()
    }

    private func wake() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}
