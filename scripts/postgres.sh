#!/usr/bin/env bash
# A throwaway PostgreSQL server from Debian's packages, for the tests: a new cluster in DIR, run as
# the `postgres` user when started by root (initdb refuses root), listening on 127.0.0.1 only at a
# free port, trusting connections from this machine, and tuned for speed over durability (the
# data dies with DIR).
#   eval "$(scripts/postgres.sh start DIR)"   starts it and exports TEST_POSTGRES_URL (the
#                                             server's URL, without a database; user `postgres`)
#   scripts/postgres.sh stop DIR              stops it (removing DIR is the caller's)
set -euo pipefail

bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)
if [ ! -x "$bin/initdb" ]; then
  echo "postgres.sh: no PostgreSQL server installed (scripts/setup.sh installs Debian's postgresql)" >&2
  exit 1
fi

# The cluster's files belong to whoever runs the server.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-} ${2:-}" in
start\ ?*)
  dir=$2
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-locale --no-sync \
    >"$dir/initdb.log"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "-c listen_addresses=127.0.0.1 \
    -p $port -c unix_socket_directories=$dir -c max_connections=200 -c fsync=off \
    -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
  printf 'export TEST_POSTGRES_URL=%q\n' "postgres://postgres@127.0.0.1:$port"
  ;;
stop\ ?*)
  dir=$2
  [ -f "$dir/data/postmaster.pid" ] || exit 0
  as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
  ;;
*)
  echo "usage: scripts/postgres.sh start|stop DIR" >&2
  exit 2
  ;;
esac
