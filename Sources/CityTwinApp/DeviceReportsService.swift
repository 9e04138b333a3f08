import Logging
import Sensing
import ServiceLifecycle

/// Writes the Device updates (`dateLastValueReported`) that measurements left waiting once their interval
/// is over, and every one still waiting at shutdown, before the database closes.
struct DeviceReportsService: Service {
    let measurements: MeasurementService
    let interval: Duration
    let ready: StartGate
    let logger: Logger

    func run() async throws {
        await ready.wait()
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval / 4)
                await write(all: false)
            }
        }
        await write(all: true)
    }

    private func write(all: Bool) async {
        do {
            try await measurements.writeDueReports(all: all)
        } catch {
            logger.error("writing devices' last reports failed", metadata: ["error": "\(String(reflecting: error))"])
        }
    }
}
