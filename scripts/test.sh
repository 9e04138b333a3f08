#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs and starts what the tests need
# (PostgreSQL on 127.0.0.1 in a temporary directory), then `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
source scripts/lib/postgres.sh
need_packages postgresql-15 postgresql-15-postgis-3 libgeos-dev libproj-dev
start_postgres
trap stop_postgres EXIT
export CITYTWIN_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:${PGPORT}/postgres"
swift build --build-tests
swift test --skip-build --no-parallel "$@"
