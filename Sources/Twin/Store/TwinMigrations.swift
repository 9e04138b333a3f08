import Storage

/// The twin's tables: tenants, entities (current state), their types, and cached @contexts.
public enum TwinMigrations {
    public static let all: [Migration] = [
        Migration(id: "twin-0001-entities") { kind in
            let json = kind == .postgres ? "JSONB" : "TEXT"
            return [
                "CREATE TABLE tenants (name TEXT PRIMARY KEY, created_at TEXT NOT NULL)",
                """
                CREATE TABLE entities (
                    tenant TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL, types TEXT NOT NULL,
                    created_at TEXT NOT NULL, modified_at TEXT NOT NULL, attrs \(json) NOT NULL,
                    PRIMARY KEY (tenant, id))
                """,
                "CREATE TABLE entity_types (tenant TEXT NOT NULL, type TEXT NOT NULL, entity_id TEXT NOT NULL, PRIMARY KEY (tenant, type, entity_id))",
                "CREATE INDEX entity_types_by_entity ON entity_types (tenant, entity_id)",
                """
                CREATE TABLE jsonld_contexts (
                    id TEXT PRIMARY KEY, url TEXT NOT NULL UNIQUE, body TEXT NOT NULL, kind TEXT NOT NULL, created_at TEXT NOT NULL)
                """,
            ]
        },
        // An index of top-level attribute values, so that `q` comparisons use an index instead of scanning.
        Migration(id: "twin-0002-attribute-values") { kind in
            // One clustered key serves both lookups by value and upkeep by (entity, value).
            let real = kind == .postgres ? "DOUBLE PRECISION" : "REAL"
            let withoutRowID = kind == .sqlite ? " WITHOUT ROWID" : ""
            return [
                """
                CREATE TABLE attr_values (
                    tenant TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, num \(real) NOT NULL, str TEXT NOT NULL, entity_id TEXT NOT NULL,
                    PRIMARY KEY (tenant, name, kind, num, str, entity_id))\(withoutRowID)
                """
            ]
        },
    ]
}
