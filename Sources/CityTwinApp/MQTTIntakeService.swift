import ServiceLifecycle
import Sensing

/// Takes measurements from the MQTT broker from when the schema is ready until shutdown.
struct MQTTIntakeService: Service {
    let intake: MQTTIntake
    let ready: StartGate

    func run() async throws {
        await ready.wait()
        try await cancelWhenGracefulShutdown {
            try await intake.run()
        }
    }
}
