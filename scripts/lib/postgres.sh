# Shared by scripts: install Debian packages on demand and run a throwaway PostgreSQL on 127.0.0.1.

need_packages() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Extra server settings may follow, e.g. start_postgres -c shared_buffers=1GB.
start_postgres() {
  local bin=/usr/lib/postgresql/15/bin
  PGPORT=${PGPORT:-$(( 40000 + RANDOM % 20000 ))}
  PGTMP=$(mktemp -d /tmp/citytwin-pg.XXXXXX)
  chown postgres:postgres "$PGTMP"
  runuser -u postgres -- "$bin/initdb" -D "$PGTMP/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  runuser -u postgres -- "$bin/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGTMP -c fsync=on -c max_connections=200 $*" start >/dev/null
  export PGPORT PGTMP
  echo "PostgreSQL listening on 127.0.0.1:$PGPORT"
}

stop_postgres() {
  [ -n "${PGTMP:-}" ] || return 0
  runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$PGTMP/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$PGTMP"
}
