import CityKit
import Foundation
import Logging
import Metrics
import Synchronization

/// How often and how long a failing endpoint is tried again.
public struct RetryPolicy: Sendable {
    /// The rest after the first failure; it doubles with each further failure in a row, up to `longest`.
    public var first: Duration
    public var longest: Duration
    /// Attempts after which a notification is dropped (and logged).
    public var attempts: Int

    public init(first: Duration = .seconds(1), longest: Duration = .seconds(300), attempts: Int = 20) {
        self.first = first
        self.longest = longest
        self.attempts = attempts
    }

    /// The rest after `failures` failures in a row.
    func rest(after failures: Int) -> Duration {
        let seconds = first.seconds * pow(2, Double(min(max(failures - 1, 0), 30)))
        return .milliseconds(Int64(min(seconds, longest.seconds) * 1000))
    }
}

/// Delivers the outbox: each endpoint has its own lane (a queue and a few senders), so an endpoint that is
/// slow or down holds up only its own notifications. A failure rests the endpoint's lane (doubling, up to a
/// limit) and its notifications wait in the outbox until then; outcomes are written back in batches.
///
/// Notifications reach it straight from the writes of this copy (already claimed) and by polling the outbox
/// for what is due: retries, and whatever a stopped copy left.
public final class NotificationDeliverer: Sendable {
    let outbox: NotificationOutbox
    let sender: any NotificationSender
    let clock: any WallClock
    let logger: Logger
    let policy: RetryPolicy
    let lease: Duration
    /// Senders per endpoint at once.
    let perEndpoint: Int
    /// An endpoint with this many queued is not given more until it has worked them off.
    let laneCapacity = 2000
    let pollInterval: Duration

    private let state = Mutex(State())
    private let wakeup = Wakeup()
    /// In `/metrics`: notifications an endpoint took, attempts that failed, notifications given up.
    private let sent = Counter(label: "citytwin_notifications_sent_total")
    private let failures = Counter(label: "citytwin_notifications_failed_total")
    private let dropped = Counter(label: "citytwin_notifications_dropped_total")
    private let events: AsyncStream<String>
    private let startWorker: AsyncStream<String>.Continuation

    struct Lane {
        var queue: [OutboxItem] = []
        var head = 0
        var running = 0
        var failures = 0
        var restingUntil: Date?
        var queued: Int { queue.count - head }

        mutating func pop() -> OutboxItem? {
            guard head < queue.count else { return nil }
            let item = queue[head]
            head += 1
            if head > 1024, head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            return item
        }
    }

    struct State {
        var lanes: [String: Lane] = [:]
        var outcome = NotificationOutbox.Outcome()
    }

    public init(
        outbox: NotificationOutbox, sender: any NotificationSender, policy: RetryPolicy = RetryPolicy(), lease: Duration = .seconds(60),
        perEndpoint: Int = 4, pollInterval: Duration = .seconds(1), clock: any WallClock = SystemWallClock(), logger: Logger
    ) {
        self.outbox = outbox
        self.sender = sender
        self.policy = policy
        self.lease = lease
        self.perEndpoint = perEndpoint
        self.pollInterval = pollInterval
        self.clock = clock
        self.logger = logger
        (events, startWorker) = AsyncStream.makeStream(of: String.self)
    }

    /// Polls the outbox now (another copy left notifications there).
    public func wake() { wakeup.signal() }

    /// Queues claimed notifications on their endpoints' lanes.
    func accept(_ items: [OutboxItem]) {
        let start = state.withLock { state -> [String] in
            var start: [String] = []
            for item in items { state.lanes[item.endpoint, default: Lane()].queue.append(item) }
            for endpoint in Set(items.map(\.endpoint)) {
                var lane = state.lanes[endpoint]!
                while lane.running < perEndpoint && lane.running < lane.queued {
                    lane.running += 1
                    start.append(endpoint)
                }
                state.lanes[endpoint] = lane
            }
            return start
        }
        for endpoint in start { startWorker.yield(endpoint) }
    }

    /// Delivers until cancelled; then writes back what was done and gives back the claims still held.
    public func run(releaseEveryClaimFirst: Bool = false) async throws {
        if releaseEveryClaimFirst { try await outbox.releaseClaims(everyCopy: true) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.poll() }
            group.addTask { await self.flushLoop() }
            for await endpoint in events {
                group.addTask { await self.work(endpoint) }
            }
            group.cancelAll()
        }
        await flush()
        do { try await outbox.releaseClaims() } catch { logger.warning("notification claims not released", metadata: ["error": "\(error)"]) }
    }

    /// Claims what is due from the outbox, for endpoints that are neither resting nor full, and renews leases.
    private func poll() async {
        var lastRenewal = ContinuousClock.now
        while !Task.isCancelled {
            do {
                let now = clock.now()
                let excluded = state.withLock { state in
                    state.lanes.compactMap { endpoint, lane in (lane.restingUntil.map { $0 > now } ?? false) || lane.queued >= laneCapacity ? endpoint : nil }
                }
                let claimed = try await outbox.claim(limit: 500, excluding: excluded, now: now, lease: lease)
                accept(claimed)
                if ContinuousClock.now - lastRenewal > lease / 3 {
                    try await outbox.renewLeases(until: now.addingTimeInterval(lease.seconds))
                    lastRenewal = ContinuousClock.now
                }
                if claimed.count == 500 { continue }
            } catch {
                if Task.isCancelled { return }
                logger.warning("notification outbox not read", metadata: ["error": "\(error)"])
            }
            await wakeup.wait(timeout: pollInterval)
        }
    }

    private func flushLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
            await flush()
        }
    }

    /// Writes back the outcomes gathered since the last flush.
    func flush() async {
        let outcome = state.withLock { state -> NotificationOutbox.Outcome in
            var outcome = state.outcome
            outcome.at = clock.now()
            state.outcome = NotificationOutbox.Outcome()
            return outcome
        }
        guard !outcome.isEmpty else { return }
        do {
            try await outbox.record(outcome)
        } catch {
            // The rows stay claimed; when the lease ends they are delivered again (at least once).
            logger.error("notification outcomes not written", metadata: ["error": "\(error)", "delivered": "\(outcome.delivered.count)"])
        }
    }

    /// One sender of an endpoint's lane: takes notifications until the lane is empty or resting.
    private func work(_ endpoint: String) async {
        while !Task.isCancelled {
            let now = clock.now()
            let next = state.withLock { state -> OutboxItem? in
                guard var lane = state.lanes[endpoint] else { return nil }
                if let until = lane.restingUntil, until > now {
                    // Resting after a failure: what is queued waits in the outbox.
                    while let item = lane.pop() { state.outcome.deferred.append((item, until)) }
                }
                let item = lane.pop()
                if item == nil { lane.running -= 1 }
                // An idle lane that is not resting is forgotten; a resting one is kept so that it stays excluded.
                let idle = item == nil && lane.running == 0 && (lane.restingUntil.map { $0 <= now } ?? true)
                state.lanes[endpoint] = idle ? nil : lane
                return item
            }
            guard let item = next else { return }
            do {
                try await sender.send(item, notifiedAt: clock.now())
                sent.increment()
                state.withLock { state in
                    state.lanes[endpoint]?.failures = 0
                    state.lanes[endpoint]?.restingUntil = nil
                    state.outcome.delivered.append(item)
                }
            } catch {
                if Task.isCancelled { return }
                let failedAt = clock.now()
                let (until, dropped) = state.withLock { state -> (Date, Bool) in
                    var lane = state.lanes[endpoint] ?? Lane()
                    // Requests that were in flight together fail together: one failure of the endpoint, one rest.
                    if lane.restingUntil.map({ $0 <= failedAt }) ?? true {
                        lane.failures += 1
                        lane.restingUntil = failedAt.addingTimeInterval(policy.rest(after: lane.failures).seconds)
                    }
                    let until = lane.restingUntil!
                    state.lanes[endpoint] = lane
                    let dropped = item.attempts + 1 >= policy.attempts
                    state.outcome.failed.append((item, dropped ? nil : until))
                    return (until, dropped)
                }
                failures.increment()
                if dropped { self.dropped.increment() }
                logger.log(
                    level: dropped ? .error : .notice, dropped ? "notification dropped after \(policy.attempts) attempts" : "notification failed; endpoint rests",
                    metadata: ["endpoint": "\(endpoint)", "subscription": "\(item.subscriptionID)", "error": "\(error)", "until": "\(Timestamp.string(until))"])
            }
        }
    }
}
