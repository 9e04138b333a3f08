import Foundation
import Logging
import ServiceLifecycle
import Storage
import Twin

/// Delivers notifications and fires periodic subscriptions, from when the schema is ready until shutdown.
struct NotificationService: Service {
    let deliverer: NotificationDeliverer
    let matcher: SubscriptionMatcher
    let database: Database
    let ready: StartGate
    let logger: Logger

    func run() async throws {
        await ready.wait()
        let (deliverer, matcher, database, logger) = (self.deliverer, self.matcher, self.database, self.logger)
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        // One SQLite file is used by one process: claims left by an earlier run are its own.
                        try await deliverer.run(releaseEveryClaimFirst: database.kind == .sqlite)
                    } catch {
                        logger.error("notification delivery stopped", metadata: ["error": "\(error)"])
                    }
                }
                group.addTask {
                    // Copies on one PostgreSQL tell each other of subscription changes and waiting notifications.
                    await TwinEvents.listen(on: database, matcher: matcher, deliverer: deliverer)
                }
                group.addTask {
                    while !Task.isCancelled {
                        do {
                            try await matcher.notifyPeriodic(database: database)
                        } catch {
                            logger.warning("periodic notifications failed", metadata: ["error": "\(error)"])
                        }
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
            }
        }
    }
}
