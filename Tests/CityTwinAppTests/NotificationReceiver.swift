import CityKit
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import ServiceLifecycle
import Synchronization

/// An HTTP endpoint on a free loopback port that records the notifications it is sent and answers as told.
final class NotificationReceiver: Sendable {
    struct Received: Sendable {
        let path: String
        let headers: HTTPFields
        let body: JSON
    }

    private let log = Mutex<[Received]>([])
    private let hits = Atomic<Int>(0)
    /// Given the request's number (from 1), how long to wait and what to answer.
    let answer: @Sendable (Int) -> (delay: Duration, status: HTTPResponse.Status)

    init(answer: @escaping @Sendable (Int) -> (delay: Duration, status: HTTPResponse.Status) = { _ in (.zero, .noContent) }) {
        self.answer = answer
    }

    /// What was received and answered 2xx.
    var received: [Received] { log.withLock { $0 } }
    var requests: Int { hits.load(ordering: .relaxed) }

    /// Distinct notification ids taken (a repeat of one is a redelivery).
    var notificationIDs: Set<String> { Set(received.compactMap { $0.body["id"]?.stringValue }) }

    /// Runs the receiver while `body` runs; `body` gets its base URL.
    func serve(_ body: @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.post("**") { request, context -> Response in
            let n = self.hits.add(1, ordering: .relaxed).newValue
            let (delay, status) = self.answer(n)
            let buffer = try await request.body.collect(upTo: 8 << 20)
            if delay > .zero { try await Task.sleep(for: delay) }
            if (200..<300).contains(status.code) {
                let json = try JSONCoding.parse(Data(buffer: buffer))
                self.log.withLock { $0.append(Received(path: request.uri.path, headers: request.headers, body: json)) }
            }
            return Response(status: status)
        }
        let port = Mutex<Int?>(nil)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } })
        try await withThrowingTaskGroup(of: Void.self) { group in
            let services = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "test.receiver")))
            group.addTask { try await services.run() }
            while port.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(5)) }
            do {
                try await body("http://127.0.0.1:\(port.withLock { $0 }!)")
            } catch {
                await services.triggerGracefulShutdown()
                throw error
            }
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }

    /// Waits until `condition` holds, up to `timeout`; answers whether it did.
    static func eventually(_ timeout: Duration = .seconds(10), _ condition: @Sendable () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }
}
