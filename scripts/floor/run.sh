#!/usr/bin/env bash
# The databases' own floor for the benchmark's batch upsert. 100,000 entities of citytwin-bench's shape are
# upserted through the API, on SQLite and on PostgreSQL; the rows they wrote (entity, types, value index,
# shape, history series, instances, hourly totals) are staged in chunks of 1,000 entities, and then copied
# back inside the database in 100 transactions, with no HTTP, JSON or binding of values, on one connection
# as the server's single SQLite writer would. Prints the entities a second each database takes with those
# rows alone: no server on this machine can upsert faster than that. `run.sh sqlite` or `run.sh postgres`
# measures one of them.
set -euo pipefail
only=${1:-}
cd "$(dirname "$0")/../.."
export PATH=/opt/swift/usr/bin:$PATH
source scripts/lib/postgres.sh
need_packages postgresql-15 postgresql-15-postgis-3 libgeos-dev libproj-dev libmosquitto-dev
swift build -c release --product citytwin
work=$(mktemp -d /tmp/citytwin-floor.XXXXXX)
server=
trap '[ -n "$server" ] && kill $server 2>/dev/null; stop_postgres; rm -rf "$work"' EXIT

# The server's own SQLite, with the options sqlite-nio builds it with.
csqlite=$(find .build/checkouts/sqlite-nio/Sources -name sqlite_nio_sqlite3.c | head -1)
gcc -O2 -DSQLITE_DEFAULT_MEMSTATUS=0 -DSQLITE_DQS=0 -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_FTS5 -DSQLITE_OMIT_DEPRECATED \
  -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_SHARED_CACHE -DSQLITE_SECURE_DELETE -DSQLITE_THREADSAFE=1 -DSQLITE_USE_URI \
  -I"$(dirname "$csqlite")/include" -I"$(dirname "$csqlite")" scripts/floor/replay.c "$csqlite" -o "$work/replay" -lpthread -lm

# Starts the server with "$@", upserts the entities, stops it.
load() {
  .build/release/citytwin serve --host 127.0.0.1 --port 0 --allow-anonymous-writes --log-level info "$@" > "$work/server.log" 2>&1 &
  server=$!
  local port=
  for _ in $(seq 600); do
    port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$work/server.log" | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && break; sleep 0.1
  done
  python3 scripts/floor/statements.py load "http://127.0.0.1:$port"
  kill $server; wait $server || true; server=
}

floor() {  # seconds for copying, seconds for reading alone
  awk -v c="$1" -v r="$2" 'BEGIN { printf "%.2f s to copy, %.2f s of it reading the staged rows: %.0f entities/s\n", c, r, 100000 / (c - r) }'
}

if [ "$only" != postgres ]; then
echo "== SQLite"
load --data-dir "$work/sqlite"
python3 scripts/floor/statements.py sqlite-stage "$work/sqlite/citytwin.sqlite" "$work/stage.sqlite" "$work/copy.sqlite"
python3 scripts/floor/statements.py sqlite-script read "$work/stage.sqlite" > "$work/read.sql"
python3 scripts/floor/statements.py sqlite-script copy "$work/stage.sqlite" > "$work/copy.sql"
read -r read_wall read_cpu < <("$work/replay" "$work/copy.sqlite" "$work/read.sql")
read -r copy_wall copy_cpu < <("$work/replay" "$work/copy.sqlite" "$work/copy.sql")
echo "SQLite, $(floor "$copy_wall" "$read_wall") (CPU $copy_cpu s)"
fi
[ "$only" = sqlite ] && exit 0

echo "== PostgreSQL"
start_postgres -c shared_buffers=2GB -c max_wal_size=8GB -c effective_cache_size=8GB
psql=(runuser -u postgres -- /usr/lib/postgresql/15/bin/psql -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
"${psql[@]}" -c "CREATE DATABASE floor"
load --database "postgres://postgres@127.0.0.1:$PGPORT/floor"
python3 scripts/floor/statements.py pg-stage | "${psql[@]}" -d floor > /dev/null
python3 scripts/floor/statements.py pg-script read > "$work/pg-read.sql"
python3 scripts/floor/statements.py pg-script copy > "$work/pg-copy.sql"
timed() {  # the wall seconds of all but the first line of an SQL file, on one connection
  { head -1 "$1"; echo "SELECT extract(epoch FROM clock_timestamp());"; tail -n +2 "$1"; echo "SELECT extract(epoch FROM clock_timestamp());"; } |
    "${psql[@]}" -d floor | grep -E '^[0-9]+\.[0-9]+$' | tail -2 | paste -sd' ' | awk '{ printf "%.2f", $2 - $1 }'
}
pg_read=$(timed "$work/pg-read.sql")
pg_copy=$(timed "$work/pg-copy.sql")
echo "PostgreSQL, one connection, $(floor "$pg_copy" "$pg_read")"
