#!/bin/sh
# A throwaway PostgreSQL cluster for the store tests: started in a fresh
# temporary directory (data, log and Unix socket all inside it; no TCP port,
# fsync off), and stopped and removed afterwards, leaving nothing behind.
#
#   pg_test_cluster.sh start RECORD   start one; write its directory to RECORD
#   pg_test_cluster.sh stop RECORD    stop the one RECORD names; remove it and RECORD
#   pg_test_cluster.sh pause RECORD   stop its server, keeping its data (a database outage)
#   pg_test_cluster.sh resume RECORD  start the paused server again
#
# Run as root (CI), the server runs as the postgres user (initdb refuses root).
# TESSERA_STORE_TESTS_PG=off starts nothing (the tests then skip, saying so);
# otherwise missing PostgreSQL binaries are an error, never a silent skip.
# TESSERA_PG_BIN overrides where initdb and pg_ctl are.
set -eu

action=${1:?usage: pg_test_cluster.sh start|stop|pause|resume RECORD}
record=${2:?usage: pg_test_cluster.sh start|stop|pause|resume RECORD}
pg_bin=${TESSERA_PG_BIN:-/usr/lib/postgresql/15/bin}
cd /tmp  # the postgres user must be able to stand in the working directory

as_server_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_server() {
  as_server_user "$pg_bin/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 \
    -o "-c fsync=off -c full_page_writes=off -c listen_addresses='' -k $1 -c max_connections=300" \
    start >/dev/null 2>&1
}

stop_cluster() {
  [ -f "$record" ] || return 0
  dir=$(cat "$record")
  if [ -n "$dir" ] && [ -d "$dir" ]; then
    as_server_user "$pg_bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
  fi
  rm -f "$record"
}

case "$action" in
  start)
    stop_cluster  # a cluster an interrupted run left behind
    if [ "${TESSERA_STORE_TESTS_PG:-}" = off ]; then
      echo "TESSERA_STORE_TESTS_PG=off: no PostgreSQL cluster started; the PostgreSQL store tests will skip"
      exit 0
    fi
    for tool in initdb pg_ctl; do
      if [ ! -x "$pg_bin/$tool" ]; then
        echo "pg_test_cluster: $pg_bin/$tool is missing. Install PostgreSQL 15 (scripts/setup installs" \
             "the postgresql package), set TESSERA_PG_BIN, or set TESSERA_STORE_TESTS_PG=off to skip the" \
             "PostgreSQL store tests on purpose." >&2
        exit 1
      fi
    done
    dir=$(mktemp -d /tmp/tessera-pg-XXXXXX)
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
    echo "$dir" > "$record"
    if ! as_server_user "$pg_bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C \
        >"$dir/initdb.log" 2>&1; then
      echo "pg_test_cluster: initdb failed:" >&2
      cat "$dir/initdb.log" >&2
      stop_cluster
      exit 1
    fi
    if ! start_server "$dir"; then
      echo "pg_test_cluster: the server did not start:" >&2
      cat "$dir/server.log" >&2
      stop_cluster
      exit 1
    fi
    echo "PostgreSQL test cluster running in $dir"
    ;;
  stop)
    stop_cluster
    ;;
  pause)
    as_server_user "$pg_bin/pg_ctl" -D "$(cat "$record")/data" -m fast -w stop >/dev/null
    ;;
  resume)
    dir=$(cat "$record")
    if ! start_server "$dir"; then
      echo "pg_test_cluster: the server did not start again:" >&2
      cat "$dir/server.log" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: pg_test_cluster.sh start|stop|pause|resume RECORD" >&2
    exit 2
    ;;
esac
