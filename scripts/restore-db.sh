#!/usr/bin/env bash
# Restores a backup made by backup-db.sh into an empty directory and proves it sound: an
# integrity check, and the row count of every table. Every sign-in in the copy is ended (its
# refresh tokens revoked): a token rotated or revoked since the backup would live again otherwise.
# Point DATABASE_URL at the result (with the platform stopped) to use it.
#
#   scripts/restore-db.sh BACKUP_FILE TARGET_DIR
set -euo pipefail

backup=${1:?usage: restore-db.sh BACKUP_FILE TARGET_DIR}
target_dir=${2:?usage: restore-db.sh BACKUP_FILE TARGET_DIR}
[ -f "$backup" ] || { echo "restore-db: no backup at $backup" >&2; exit 1; }
mkdir -p "$target_dir"
if [ -n "$(ls -A "$target_dir")" ]; then
  echo "restore-db: $target_dir is not empty; restore into an empty directory" >&2
  exit 1
fi

db="$target_dir/ckad.db"
cp -- "$backup" "$db"
chmod 600 "$db"
check=$(sqlite3 "$db" "PRAGMA integrity_check")
if [ "$check" != "ok" ]; then
  echo "restore-db: integrity check failed: $check" >&2
  exit 1
fi
echo "restore-db: $db passed its integrity check"
if [ -n "$(sqlite3 "$db" "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'refresh_tokens'")" ]; then
  revoked=$(sqlite3 "$db" "UPDATE refresh_tokens SET revoked_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')
                           WHERE revoked_at IS NULL; SELECT changes()")
  echo "restore-db: signed everyone out ($revoked refresh tokens revoked)"
fi
for table in $(sqlite3 "$db" "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"); do
  echo "$table $(sqlite3 "$db" "SELECT COUNT(*) FROM \"$table\"")"
done
echo "restore-db: done; set DATABASE_URL=sqlite://$db"
