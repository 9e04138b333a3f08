import Foundation
import Logging
import ServiceLifecycle
import Twin

/// Keeps history for a set number of days: every hour (and at start) deletes instances observed earlier.
struct HistoryRetentionService: Service {
    let history: any HistoryStore
    let days: Int
    let logger: Logger
    var interval: Duration = .seconds(3600)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            // The first pass waits a little, so that migrations have run.
            try? await Task.sleep(for: .seconds(5))
            while !Task.isCancelled {
                let cutoff = Date().addingTimeInterval(-Double(days) * 86_400)
                do {
                    let deleted = try await history.deleteObserved(before: cutoff)
                    if deleted > 0 { logger.info("history retention", metadata: ["deleted": "\(deleted)", "before": "\(cutoff)"]) }
                } catch {
                    logger.error("history retention failed", metadata: ["error": "\(String(reflecting: error))"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
