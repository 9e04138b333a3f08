#!/usr/bin/env bash
# Benchmarks the server in release mode over loopback HTTP, on SQLite and on PostgreSQL.
# Extra arguments go to citytwin-bench (e.g. --entities 20000 for a quick run).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
source scripts/lib/postgres.sh
source scripts/lib/mosquitto.sh
need_packages postgresql-15 postgresql-15-postgis-3 libgeos-dev libproj-dev libmosquitto-dev mosquitto openssl wrk
swift build -c release --product citytwin
swift build -c release --product citytwin-bench
trap 'stop_postgres; stop_mosquitto' EXIT
start_mosquitto
echo "== SQLite"
.build/release/citytwin-bench --mqtt-broker "mqtt://127.0.0.1:${MQTTPORT}" "$@"
# Sized for the benchmark's data as a DBA would size a server (the defaults, 128 MB of shared buffers and
# 1 GB of log between checkpoints, are for a laptop): its tables fit in shared buffers, and a bulk load
# does not force checkpoints back to back.
start_postgres -c shared_buffers=2GB -c max_wal_size=8GB -c effective_cache_size=8GB
runuser -u postgres -- /usr/lib/postgresql/15/bin/psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "CREATE DATABASE bench" >/dev/null
echo "== PostgreSQL"
.build/release/citytwin-bench --database "postgres://postgres@127.0.0.1:${PGPORT}/bench" --mqtt-broker "mqtt://127.0.0.1:${MQTTPORT}" "$@"
