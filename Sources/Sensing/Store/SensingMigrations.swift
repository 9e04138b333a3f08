import Storage

/// The device intake's tables: device groups (by API key) and devices.
public enum SensingMigrations {
    public static let all: [Migration] = [
        Migration(id: "sensing-0001-devices") { _ in
            [
                "CREATE TABLE iot_groups (tenant TEXT NOT NULL, apikey TEXT NOT NULL, entity_type TEXT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (tenant, apikey))",
                """
                CREATE TABLE iot_devices (
                    tenant TEXT NOT NULL, device_id TEXT NOT NULL, apikey TEXT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL,
                    PRIMARY KEY (tenant, device_id))
                """,
                "CREATE UNIQUE INDEX iot_devices_by_key ON iot_devices (apikey, device_id)",
            ]
        }
    ]
}
