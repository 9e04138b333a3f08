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
        // GeoProperty values, one row per attribute instance, with a spatial index: an R*Tree of bounding
        // boxes on SQLite (exact predicates by GEOS in `geo_match`), PostGIS with GiST indexes on PostgreSQL.
        Migration(id: "twin-0003-geo-shapes") { kind in
            if kind == .postgres {
                return [
                    "CREATE EXTENSION IF NOT EXISTS postgis",
                    "CREATE TABLE geo_shapes (tenant TEXT NOT NULL, entity_id TEXT NOT NULL, name TEXT NOT NULL, geom geometry(Geometry, 4326) NOT NULL)",
                    "CREATE INDEX geo_shapes_entity ON geo_shapes (tenant, entity_id)",
                    "CREATE INDEX geo_shapes_geom ON geo_shapes USING GIST (geom)",
                    "CREATE INDEX geo_shapes_geography ON geo_shapes USING GIST ((geom::geography))",
                ]
            }
            return [
                """
                CREATE TABLE geo_shapes (
                    rid INTEGER PRIMARY KEY, tenant TEXT NOT NULL, entity_id TEXT NOT NULL, name TEXT NOT NULL,
                    min_x REAL NOT NULL, max_x REAL NOT NULL, min_y REAL NOT NULL, max_y REAL NOT NULL, wkb BLOB NOT NULL)
                """,
                "CREATE INDEX geo_shapes_entity ON geo_shapes (tenant, entity_id)",
                "CREATE INDEX geo_shapes_name ON geo_shapes (tenant, name)",
                "CREATE VIRTUAL TABLE geo_rtree USING rtree(rid, min_x, max_x, min_y, max_y)",
                """
                CREATE TRIGGER geo_shapes_indexed AFTER INSERT ON geo_shapes BEGIN
                    INSERT INTO geo_rtree VALUES (new.rid, new.min_x, new.max_x, new.min_y, new.max_y);
                END
                """,
                "CREATE TRIGGER geo_shapes_unindexed AFTER DELETE ON geo_shapes BEGIN DELETE FROM geo_rtree WHERE rid = old.rid; END",
            ]
        },
        // History: every attribute instance an update wrote, in the same transaction. A series is one
        // (entity, attribute, datasetId); its instances are ordered by time (microseconds since 1970).
        // Numbers go in `num`, the rest of an instance (without what the columns hold) in `body`.
        Migration(id: "twin-0004-history") { kind in
            if kind == .postgres {
                return [
                    """
                    CREATE TABLE history_series (
                        id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, entity_id TEXT NOT NULL, name TEXT NOT NULL, dataset_id TEXT NOT NULL,
                        types TEXT NOT NULL, UNIQUE (tenant, entity_id, name, dataset_id))
                    """,
                    """
                    CREATE TABLE history (
                        instance BIGSERIAL PRIMARY KEY, series BIGINT NOT NULL REFERENCES history_series (id) ON DELETE CASCADE,
                        observed BIGINT NOT NULL, recorded BIGINT NOT NULL, num DOUBLE PRECISION, body TEXT)
                    """,
                    "CREATE INDEX history_by_time ON history (series, observed)",
                ]
            }
            return [
                """
                CREATE TABLE history_series (
                    id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, entity_id TEXT NOT NULL, name TEXT NOT NULL, dataset_id TEXT NOT NULL,
                    types TEXT NOT NULL, UNIQUE (tenant, entity_id, name, dataset_id))
                """,
                """
                CREATE TABLE history (
                    instance INTEGER PRIMARY KEY AUTOINCREMENT, series INTEGER NOT NULL REFERENCES history_series (id) ON DELETE CASCADE,
                    observed INTEGER NOT NULL, recorded INTEGER NOT NULL, num REAL, body TEXT)
                """,
                "CREATE INDEX history_by_time ON history (series, observed)",
            ]
        },
        // LanguageProperty texts (one row per language) and the elements of array values join the value
        // index, for entities stored before.
        Migration(id: "twin-0005-language-and-element-values") { kind in
            if kind == .postgres {
                return [
                    """
                    INSERT INTO attr_values (tenant, name, kind, num, str, entity_id)
                    SELECT e.tenant, a.key, CASE WHEN jsonb_typeof(x.v) = 'number' THEN 'n' ELSE 's' END,
                        CASE WHEN jsonb_typeof(x.v) = 'number' THEN (x.v #>> '{}')::float8 ELSE 0 END,
                        CASE WHEN jsonb_typeof(x.v) = 'number' THEN '' ELSE x.v #>> '{}' END, e.id
                    FROM entities e CROSS JOIN LATERAL jsonb_each(e.attrs) AS a CROSS JOIN LATERAL jsonb_array_elements(a.value) AS i(v)
                    CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(i.v -> 'value') = 'array' THEN i.v -> 'value' ELSE '[]'::jsonb END) AS x(v)
                    WHERE jsonb_typeof(x.v) IN ('number', 'string')
                    ON CONFLICT DO NOTHING
                    """,
                    """
                    INSERT INTO attr_values (tenant, name, kind, num, str, entity_id)
                    SELECT e.tenant, a.key, 's', 0, l.value, e.id FROM entities e
                    CROSS JOIN LATERAL jsonb_each(e.attrs) AS a CROSS JOIN LATERAL jsonb_array_elements(a.value) AS i(v)
                    CROSS JOIN LATERAL jsonb_each_text(CASE WHEN jsonb_typeof(i.v -> 'languageMap') = 'object' THEN i.v -> 'languageMap' ELSE '{}'::jsonb END) AS l
                    ON CONFLICT DO NOTHING
                    """
                ]
            }
            return [
                """
                INSERT INTO attr_values (tenant, name, kind, num, str, entity_id)
                SELECT e.tenant, a.key, 's', 0, l.value, e.id FROM entities e, json_each(e.attrs) AS a, json_each(a.value) AS i, json_each(i.value, '$.languageMap') AS l
                WHERE json_type(i.value, '$.languageMap') = 'object' AND l.type = 'text'
                ON CONFLICT DO NOTHING
                """,
                """
                INSERT INTO attr_values (tenant, name, kind, num, str, entity_id)
                SELECT e.tenant, a.key, CASE WHEN x.type = 'text' THEN 's' ELSE 'n' END, CASE WHEN x.type = 'text' THEN 0 ELSE x.value END,
                    CASE WHEN x.type = 'text' THEN x.value ELSE '' END, e.id
                FROM entities e, json_each(e.attrs) AS a, json_each(a.value) AS i, json_each(i.value, '$.value') AS x
                WHERE json_type(i.value, '$.value') = 'array' AND x.type IN ('integer', 'real', 'text')
                ON CONFLICT DO NOTHING
                """,
            ]
        },
        // Subscriptions as their subscribers wrote them, with delivery statistics; a revision number that every
        // change of a subscription raises (so each copy's matcher knows when to reload); and the outbox of
        // notifications not yet delivered, written in the transaction of the change that caused them.
        Migration(id: "twin-0006-subscriptions") { kind in
            let serial = kind == .postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY"
            return [
                """
                CREATE TABLE subscriptions (
                    tenant TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, context TEXT,
                    created_at BIGINT NOT NULL, modified_at BIGINT NOT NULL,
                    times_sent BIGINT NOT NULL DEFAULT 0, times_failed BIGINT NOT NULL DEFAULT 0,
                    last_notification BIGINT, last_success BIGINT, last_failure BIGINT,
                    last_queued BIGINT, next_periodic BIGINT,
                    PRIMARY KEY (tenant, id))
                """,
                "CREATE TABLE subscription_revision (id INTEGER PRIMARY KEY, revision BIGINT NOT NULL)",
                "INSERT INTO subscription_revision (id, revision) VALUES (1, 0)",
                """
                CREATE TABLE notifications (
                    id \(serial), tenant TEXT NOT NULL, subscription_id TEXT NOT NULL, notification_id TEXT NOT NULL,
                    endpoint TEXT NOT NULL, envelope TEXT NOT NULL, data TEXT NOT NULL,
                    created BIGINT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt BIGINT NOT NULL,
                    claimed_by TEXT, claimed_until BIGINT)
                """,
                "CREATE INDEX notifications_due ON notifications (next_attempt)",
                "CREATE INDEX notifications_by_subscription ON notifications (tenant, subscription_id)",
                "CREATE INDEX notifications_by_claim ON notifications (claimed_by)",
            ]
        },
        // PostgreSQL: a write's locks and its read of the entities it changes in one round trip. The function
        // is VOLATILE, so its query takes its snapshot after the locks are held and sees the last committed
        // state of every locked entity.
        Migration(id: "twin-0007-locked-entities") { kind in
            guard kind == .postgres else { return [] }
            return [
                """
                CREATE FUNCTION citytwin_locked_entities(p_tenant TEXT, p_ids JSONB)
                RETURNS TABLE (r_id TEXT, r_types TEXT, r_created_at TEXT, r_modified_at TEXT, r_attrs TEXT)
                LANGUAGE plpgsql VOLATILE AS $$
                BEGIN
                    PERFORM pg_advisory_xact_lock(s.k) FROM (
                        SELECT DISTINCT hashtextextended(p_tenant || chr(31) || v, 0) AS k FROM jsonb_array_elements_text(p_ids) AS v ORDER BY k) AS s;
                    RETURN QUERY SELECT e.id, e.types, e.created_at, e.modified_at, e.attrs::text FROM entities e
                        WHERE e.tenant = p_tenant AND e.id IN (SELECT jsonb_array_elements_text(p_ids));
                END
                $$
                """
            ]
        },
        // Hourly rollups of every series (count, numeric count, sum, sum of squares, min, max by observedAt
        // hour), so that aggregations over whole hours read one row an hour instead of every instance. Every
        // write of instances adds to them: on PostgreSQL a statement trigger on `history`, on SQLite
        // `History.write` (one upsert per series and hour of the write, not one per instance). Deleting or
        // changing instances recomputes the hours they were in (`HistoryRollup`). Made here for the history
        // already kept.
        Migration(id: "twin-0008-history-hours") { kind in
            let hour = HistoryRollup.hourStart("observed")
            let backfill = """
                INSERT INTO history_hours (series, hour, n, num_n, sum, sumsq, min, max)
                SELECT series, \(hour), COUNT(*), COUNT(num), COALESCE(SUM(num), 0), COALESCE(SUM(num * num), 0), MIN(num), MAX(num)
                FROM history GROUP BY series, \(hour)
                """
            if kind == .postgres {
                return [
                    """
                    CREATE TABLE history_hours (
                        series BIGINT NOT NULL, hour BIGINT NOT NULL, n BIGINT NOT NULL, num_n BIGINT NOT NULL,
                        sum DOUBLE PRECISION NOT NULL, sumsq DOUBLE PRECISION NOT NULL, min DOUBLE PRECISION, max DOUBLE PRECISION,
                        PRIMARY KEY (series, hour))
                    """,
                    // Once per statement, from its inserted rows: one upsert per (series, hour), in key order so
                    // that two writers lock rollups in the same order.
                    """
                    CREATE FUNCTION citytwin_history_roll_up() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        INSERT INTO history_hours (series, hour, n, num_n, sum, sumsq, min, max)
                        SELECT series, \(hour), COUNT(*), COUNT(num), COALESCE(SUM(num), 0), COALESCE(SUM(num * num), 0), MIN(num), MAX(num)
                        FROM added GROUP BY series, \(hour) ORDER BY 1, 2
                        ON CONFLICT (series, hour) DO UPDATE SET
                            n = history_hours.n + excluded.n, num_n = history_hours.num_n + excluded.num_n,
                            sum = history_hours.sum + excluded.sum, sumsq = history_hours.sumsq + excluded.sumsq,
                            min = LEAST(history_hours.min, excluded.min), max = GREATEST(history_hours.max, excluded.max);
                        RETURN NULL;
                    END
                    $$
                    """,
                    "CREATE TRIGGER history_rolled_up AFTER INSERT ON history REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION citytwin_history_roll_up()",
                    backfill,
                ]
            }
            return [
                """
                CREATE TABLE history_hours (
                    series INTEGER NOT NULL, hour INTEGER NOT NULL, n INTEGER NOT NULL, num_n INTEGER NOT NULL,
                    sum REAL NOT NULL, sumsq REAL NOT NULL, min REAL, max REAL,
                    PRIMARY KEY (series, hour)) WITHOUT ROWID
                """,
                backfill,
            ]
        },
        // PostgreSQL: each shape carries its entity's types, so that a geo-query with a type tests them on the
        // shape row PostGIS reads anyway, instead of one lookup in `entity_types` per match (measured with
        // pgbench on 1,000,000 points, one client: `near` 500 m 4.8–5.0 → 2.1–2.3 ms, a district polygon
        // 26–29 → 17 ms). Every write that changes an entity's types or shapes writes its shapes again.
        Migration(id: "twin-0009-shape-types") { kind in
            guard kind == .postgres else { return [] }
            return [
                "ALTER TABLE geo_shapes ADD COLUMN types TEXT[] NOT NULL DEFAULT '{}'",
                """
                UPDATE geo_shapes g SET types = ARRAY(SELECT jsonb_array_elements_text(e.types::jsonb))
                FROM entities e WHERE e.tenant = g.tenant AND e.id = g.entity_id
                """,
            ]
        },
    ]
}
