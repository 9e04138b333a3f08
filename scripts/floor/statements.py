"""The floor measurement's steps: load the benchmark's entities through the API, stage the rows they
wrote in chunks of 1,000 entities, and write the scripts that copy them back in 100 transactions."""
import http.client, json, sqlite3, sys, threading, urllib.parse

# The tables an upsert of new entities writes, with their columns; on PostgreSQL the hourly totals come
# from the trigger on `history`.
TABLES = {
    "entities": "tenant,id,type,types,created_at,modified_at,attrs",
    "entity_types": "tenant,type,entity_id",
    "attr_values": "tenant,name,kind,num,str,entity_id",
    "geo_shapes": "rid,tenant,entity_id,name,min_x,max_x,min_y,max_y,wkb",
    "history_series": "id,tenant,entity_id,name,dataset_id,types",
    "history": "instance,series,observed,recorded,num,body",
    "history_hours": "series,hour,n,num_n,sum,sumsq,min,max",
}
PG_COLUMNS = dict(TABLES, geo_shapes="tenant,entity_id,name,geom")
PG_TABLES = [t for t in TABLES if t != "history_hours"]
DISTRICTS = ["福田区", "南山区", "罗湖区", "宝安区", "龙岗区"]


def entity(n):
    """As citytwin-bench's `Benchmark.entity`."""
    lon, lat = 113.8 + (n % 1000) / 2000, 22.45 + (n // 1000 % 100) / 400
    return {"id": f"urn:ngsi-ld:AirQualitySensor:{n}", "type": "AirQualitySensor",
            "temperature": {"type": "Property", "value": (n % 400) / 10, "unitCode": "CEL", "observedAt": "2026-11-25T02:00:00Z"},
            "pm25": {"type": "Property", "value": n % 150}, "district": {"type": "Property", "value": DISTRICTS[n % 5]},
            "refDevice": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:{n}"},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}}


def load(base, batches=100):
    """Upserts `batches` × 1,000 entities, four requests at a time."""
    url = urllib.parse.urlsplit(base)
    def send(worker):
        connection = http.client.HTTPConnection(url.hostname, url.port)
        for b in range(worker, batches, 4):
            body = json.dumps([entity(b * 1000 + i) for i in range(1000)], ensure_ascii=False).encode()
            connection.request("POST", "/ngsi-ld/v1/entityOperations/upsert", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            assert response.status in (201, 204), response.status
    workers = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for w in workers: w.start()
    for w in workers: w.join()


def sqlite_stage(source, stage, empty):
    """Copies `source`'s rows into `stage` with each row's chunk (its entity's place in the load / 1,000),
    and creates `empty` with `source`'s schema."""
    db = sqlite3.connect(stage)
    db.execute("ATTACH ? AS o", (source,))
    db.execute("CREATE TEMP TABLE chunks AS SELECT id, (rowid - 1) / 1000 AS chunk FROM o.entities")
    db.execute("CREATE INDEX temp.chunks_id ON chunks (id)")
    for table in TABLES:
        if table == "history":
            select = "SELECT h.*, s.chunk FROM o.history h JOIN s_history_series s ON s.id = h.series ORDER BY h.instance"
        elif table == "history_hours":
            select = "SELECT h.*, s.chunk FROM o.history_hours h JOIN s_history_series s ON s.id = h.series"
        else:
            key = "id" if table == "entities" else "entity_id"
            select = f"SELECT t.*, c.chunk FROM o.{table} t JOIN chunks c ON c.id = t.{key} ORDER BY c.chunk"
        db.execute(f"CREATE TABLE s_{table} AS {select}")
        db.execute(f"CREATE INDEX s_{table}_chunk ON s_{table} (chunk)")
    db.commit()
    schema = [sql for (sql,) in db.execute("SELECT sql FROM o.sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
                                          "AND name NOT LIKE 'geo_rtree_%' ORDER BY rowid")]
    db.close()
    target = sqlite3.connect(empty)
    for sql in schema: target.execute(sql)
    target.commit()


def script(mode, columns, tables, source):
    """One transaction per chunk; `copy` inserts the chunk's rows, `read` only reads them. The first line
    (run untimed) reads every staged row once."""
    def read(table, where=""):
        if source == "stage.":  # PostgreSQL: the rows fetched (OFFSET 0 keeps the subquery), not converted
            return f"SELECT count(*) FROM (SELECT {columns[table]} FROM stage.s_{table}{where} OFFSET 0) r;"
        width = "+".join(f"length({c})" for c in columns[table].split(","))
        return f"SELECT sum({width}) FROM {source}s_{table}{where};"
    lines = [" ".join(read(t) for t in tables)]
    for k in range(100):
        if mode == "copy":
            body = [f"INSERT INTO {t} ({columns[t]}) SELECT {columns[t]} FROM {source}s_{t} WHERE chunk = {k};" for t in tables]
        else:
            body = [read(t, f" WHERE chunk = {k}") for t in tables]
        lines.append("BEGIN; " + " ".join(body) + " COMMIT;")
    return "\n".join(lines) + "\n"


PG_STAGE = """
CREATE SCHEMA stage;
CREATE TABLE stage.chunks AS SELECT id, (row_number() OVER (ORDER BY created_at, id) - 1) / 1000 AS chunk FROM entities;
CREATE INDEX ON stage.chunks (id);
""" + "".join(
    f"CREATE TABLE stage.s_{t} AS SELECT t.*, c.chunk FROM {t} t JOIN stage.chunks c ON c.id = t.{'id' if t == 'entities' else 'entity_id'};\n"
    for t in ["entities", "entity_types", "attr_values", "geo_shapes", "history_series"]) + """
CREATE TABLE stage.s_history AS SELECT h.*, s.chunk FROM history h JOIN stage.s_history_series s ON s.id = h.series;
""" + "".join(f"CREATE INDEX ON stage.s_{t} (chunk);\nTRUNCATE {t} CASCADE;\n" for t in PG_TABLES) + """
TRUNCATE history_hours;
VACUUM ANALYZE;
CHECKPOINT;
"""

if __name__ == "__main__":
    step = sys.argv[1]
    if step == "load": load(sys.argv[2])
    elif step == "sqlite-stage": sqlite_stage(*sys.argv[2:5])
    elif step == "sqlite-script": sys.stdout.write("ATTACH '%s' AS s; " % sys.argv[3] + script(sys.argv[2], TABLES, list(TABLES), "s."))
    elif step == "pg-stage": sys.stdout.write(PG_STAGE)
    elif step == "pg-script": sys.stdout.write(script(sys.argv[2], PG_COLUMNS, PG_TABLES, "stage."))
