#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs and starts what the tests need
# (PostgreSQL and a Mosquitto MQTT broker on 127.0.0.1, in temporary directories), then `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
source scripts/lib/postgres.sh
source scripts/lib/mosquitto.sh
need_packages postgresql-15 postgresql-15-postgis-3 libgeos-dev libproj-dev libmosquitto-dev mosquitto openssl
trap 'stop_postgres; stop_mosquitto' EXIT
start_postgres
start_mosquitto
export CITYTWIN_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:${PGPORT}/postgres"
export CITYTWIN_TEST_MQTT_URL="mqtt://127.0.0.1:${MQTTPORT}"
export CITYTWIN_TEST_MQTTS_URL="mqtts://127.0.0.1:${MQTTSPORT}"
export CITYTWIN_TEST_MQTT_CA_FILE="$MQTTCA"
swift build --build-tests
swift test --skip-build --no-parallel "$@"
