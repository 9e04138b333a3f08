import ServiceLifecycle
import Sensing
import Storage

/// Forgets cached devices when a copy on the same PostgreSQL changes provisioning, from when the schema is
/// ready until shutdown.
struct DeviceEventsService: Service {
    let directory: DeviceDirectory
    let database: Database
    let ready: StartGate

    func run() async throws {
        await ready.wait()
        let (directory, database) = (self.directory, self.database)
        await cancelWhenGracefulShutdown {
            await SensingEvents.listen(on: database, directory: directory)
        }
    }
}
