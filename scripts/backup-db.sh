#!/usr/bin/env bash
# Online backup of the platform's database, safe while the platform writes, checked before it is
# kept: for SQLite, `VACUUM INTO` (SQLite's own consistent copy, never a plain copy of a WAL
# database) and `PRAGMA integrity_check`; for PostgreSQL, `pg_dump` in its custom format (one
# snapshot of the whole database) and `pg_restore --list` reading it back. The newest BACKUP_KEEP
# copies are kept, and BACKUP_UPLOAD_CMD (if set) is run with the copy's path appended, e.g.
# `aws s3 cp --quiet` + a bucket URL, or `rclone copyto`.
#
#   scripts/backup-db.sh [DATABASE_URL]        (default: $DATABASE_URL, then sqlite://data/ckad.db)
#   env: BACKUP_DIR (default data/backups), BACKUP_KEEP (default 28: a week at one every 6 hours)
set -euo pipefail

url=${1:-${DATABASE_URL:-sqlite://data/ckad.db}}
backup_dir=${BACKUP_DIR:-data/backups}
keep=${BACKUP_KEEP:-28}
[[ "$keep" =~ ^[1-9][0-9]*$ ]] || { echo "backup-db: BACKUP_KEEP must be a positive number" >&2; exit 1; }

stamp=$(date -u +%Y%m%dT%H%M%SZ)
case "$url" in
postgres://* | postgresql://*)
  target="$backup_dir/ckad-$stamp.dump"
  ;;
*)
  db=${url#sqlite://}
  db=${db#sqlite:}
  db=${db%%\?*}
  [ -f "$db" ] || { echo "backup-db: no database at $db" >&2; exit 1; }
  target="$backup_dir/ckad-$stamp.db"
  ;;
esac
mkdir -p "$backup_dir"
chmod 700 "$backup_dir"
partial="$target.partial"
rm -f "$partial"

if [ -n "${db:-}" ]; then
  # The path goes into an SQL string literal: double any single quote.
  sqlite3 "$db" "VACUUM INTO '${partial//\'/\'\'}'"
  check=$(sqlite3 "$partial" "PRAGMA integrity_check")
else
  pg_dump --format=custom --no-owner --no-privileges --file="$partial" --dbname="$url"
  check=$(pg_restore --list "$partial" >/dev/null 2>&1 && echo ok || echo "pg_restore cannot read it")
fi
if [ "$check" != "ok" ]; then
  rm -f "$partial"
  echo "backup-db: the copy failed its check: $check" >&2
  exit 1
fi
chmod 600 "$partial"
mv "$partial" "$target"
echo "backup-db: wrote $target ($(stat -c %s "$target") bytes)"

# Keep the newest $keep copies.
mapfile -t old < <(ls -1 "$backup_dir"/ckad-*.db "$backup_dir"/ckad-*.dump 2>/dev/null | sort -r | tail -n "+$((keep + 1))")
if [ "${#old[@]}" -gt 0 ]; then
  rm -f -- "${old[@]}"
  echo "backup-db: removed ${#old[@]} older copies"
fi

if [ -n "${BACKUP_UPLOAD_CMD:-}" ]; then
  read -ra upload <<<"$BACKUP_UPLOAD_CMD"
  "${upload[@]}" "$target"
  echo "backup-db: uploaded with ${upload[0]}"
fi
