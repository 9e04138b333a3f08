#!/usr/bin/env bash
# Builds CityTwin and starts it on the embedded SQLite database in ./data (flags are passed to `serve`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
source scripts/lib/postgres.sh
need_packages libgeos-dev libproj-dev libmosquitto-dev
swift build -c release --product citytwin
exec .build/release/citytwin serve "$@"
