import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A notification receiver on a free loopback port, inside the benchmark process: `note` sees each
/// notification's `data` members as they arrive.
enum Receiver {
    static func serve(note: @escaping @Sendable ([[String: Any]]) -> Void, _ body: @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.post("notify/**") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 8 << 20)
            if let json = try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any], let data = json["data"] as? [[String: Any]] {
                note(data)
            }
            return Response(status: .noContent)
        }
        let port = Mutex<Int?>(nil)
        let receiver = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } }, logger: quiet)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await receiver.runService(gracefulShutdownSignals: []) }
            defer { group.cancelAll() }
            while port.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
            try await body("http://127.0.0.1:\(port.withLock { $0 }!)/notify")
        }
    }

    /// The receiver's own log stays out of the figures.
    static let quiet = {
        var logger = Logger(label: "citytwin-bench.receiver")
        logger.logLevel = .critical
        return logger
    }()
}
