import Storage

/// Events copies sharing one PostgreSQL tell each other (`LISTEN`/`NOTIFY`), sent in the transaction of
/// the change they announce: provisioning changed, so cached devices are forgotten at once rather than
/// when their entries expire.
public enum SensingEvents {
    public static let channel = "citytwin_sensing"
    public static let devicesChanged = "devices"

    /// Clears `directory` on every provisioning change of any copy, until cancelled.
    public static func listen(on database: Database, directory: DeviceDirectory) async {
        await database.listen(channel) { payload in
            if payload == devicesChanged { directory.clear() }
        }
    }
}
