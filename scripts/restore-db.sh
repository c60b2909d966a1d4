#!/usr/bin/env bash
# Restores a backup made by backup-db.sh and proves it sound: a check of the copy, and the row
# count of every table. Every sign-in in the copy is ended (its refresh tokens revoked): a token
# rotated or revoked since the backup would live again otherwise. Point DATABASE_URL at the result
# (with the platform stopped) to use it.
#
#   scripts/restore-db.sh BACKUP.db TARGET_DIR          a SQLite copy, into an empty directory
#   scripts/restore-db.sh BACKUP.dump POSTGRES_URL      a PostgreSQL dump, into an empty database
set -euo pipefail

usage="usage: restore-db.sh BACKUP TARGET_DIR|POSTGRES_URL"
backup=${1:?$usage}
target=${2:?$usage}
[ -f "$backup" ] || { echo "restore-db: no backup at $backup" >&2; exit 1; }
revoke="UPDATE refresh_tokens SET revoked_at = %s WHERE revoked_at IS NULL"

case "$target" in
postgres://* | postgresql://*)
  [[ "$backup" == *.dump ]] || { echo "restore-db: a PostgreSQL database takes a .dump backup" >&2; exit 1; }
  sql() { psql --no-psqlrc --quiet --tuples-only --no-align --set=ON_ERROR_STOP=1 --dbname="$target" --command="$1"; }
  if [ "$(sql "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" != 0 ]; then
    echo "restore-db: the target database is not empty; restore into an empty database" >&2
    exit 1
  fi
  # One transaction: a restore that fails leaves the database empty.
  pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --dbname="$target" "$backup"
  echo "restore-db: the dump was restored whole"
  revoked=$(sql "WITH r AS ($(printf "$revoke" "now()") RETURNING 1) SELECT count(*) FROM r")
  echo "restore-db: signed everyone out ($revoked refresh tokens revoked)"
  for table in $(sql "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"); do
    echo "$table $(sql "SELECT count(*) FROM \"$table\"")"
  done
  echo "restore-db: done; set DATABASE_URL to that database's URL"
  ;;
*)
  [[ "$backup" == *.db ]] || { echo "restore-db: a directory takes a .db backup (a .dump needs a PostgreSQL URL)" >&2; exit 1; }
  mkdir -p "$target"
  if [ -n "$(ls -A "$target")" ]; then
    echo "restore-db: $target is not empty; restore into an empty directory" >&2
    exit 1
  fi
  db="$target/ckad.db"
  cp -- "$backup" "$db"
  chmod 600 "$db"
  check=$(sqlite3 "$db" "PRAGMA integrity_check")
  if [ "$check" != "ok" ]; then
    echo "restore-db: integrity check failed: $check" >&2
    exit 1
  fi
  echo "restore-db: $db passed its integrity check"
  if [ -n "$(sqlite3 "$db" "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'refresh_tokens'")" ]; then
    revoked=$(sqlite3 "$db" "$(printf "$revoke" "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')"); SELECT changes()")
    echo "restore-db: signed everyone out ($revoked refresh tokens revoked)"
  fi
  for table in $(sqlite3 "$db" "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"); do
    echo "$table $(sqlite3 "$db" "SELECT COUNT(*) FROM \"$table\"")"
  done
  echo "restore-db: done; set DATABASE_URL=sqlite://$db"
  ;;
esac
