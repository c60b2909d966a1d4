#!/usr/bin/env bash
# Removes what the platform left behind while it was not running: every cluster network carrying
# the platform's labels (and this instance's name) whose cluster neither a started session nor a
# ready warm pool member in the database owns, with the cluster's containers (lite: kwokctl's
# project label; kind: kind's cluster label), its terminal and its state folder; and the admin
# kubeconfigs (`$STATE_DIR/sessions/<id>.kubeconfig`) of whatever owns nothing. Anything without
# the platform's labels is never touched, so an operator's own KIND clusters and containers are
# safe. The platform's reconciler keeps and removes the same at start-up (a ready member is kept
# for the next start, which checks its health; a member cut off while being made is a
# leftover); this script is for systemd's ExecStartPre and for operators.
#
#   scripts/cleanup-orphans.sh      env: DATABASE_URL, STATE_DIR, PLATFORM_INSTANCE (as the platform)
set -euo pipefail

url=${DATABASE_URL:-sqlite://data/ckad.db}
# It reads SQLite only; read as empty, a Postgres database would own nothing and every cluster of
# the instance would go. The platform's reconciler removes the same orphans at start-up.
case $url in
postgres://* | postgresql://*)
  echo "cleanup-orphans: reads SQLite databases only; on PostgreSQL the platform removes orphans at start-up" >&2
  exit 0
  ;;
esac
db=${url#sqlite://}
db=${db#sqlite:}
db=${db%%\?*}
state_dir=${STATE_DIR:-data/state}
# Unset, the instance is the database's own name (its `platform` table); no database, nothing ran.
instance=${PLATFORM_INSTANCE:-}
if [ -z "$instance" ]; then
  [ -f "$db" ] || exit 0
  instance=$(sqlite3 "$db" "SELECT instance FROM platform WHERE id = 1")
fi

# Clusters of started sessions and of ready pool members survive a restart of the platform.
owned=""
owners=""
if [ -f "$db" ]; then
  live="SELECT id, cluster_name FROM sessions WHERE status = 'started'"
  # A database from before the warm pool has no members yet (the platform migrates it later).
  if [ -n "$(sqlite3 "$db" "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'pool_members'")" ]; then
    live="$live UNION ALL SELECT id, cluster_name FROM pool_members WHERE status = 'ready'"
  fi
  # An exam's hosts each have a cluster of their own (the first is the session's).
  if [ -n "$(sqlite3 "$db" "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'session_hosts'")" ]; then
    live="$live UNION ALL SELECT h.session_id, h.cluster_name FROM session_hosts h
      JOIN sessions s ON s.id = h.session_id WHERE s.status = 'started'"
  fi
  owned=$(sqlite3 "$db" "SELECT cluster_name FROM ($live)")
  owners=$(sqlite3 "$db" "SELECT id FROM ($live)")
fi

removed=0
while IFS=$'\t' read -r network provider cluster; do
  [ -n "$network" ] || continue
  # Only names the platform itself makes (the same rule as its ClusterName type).
  [[ "$cluster" =~ ^ckad-[a-z0-9]([a-z0-9-]*[a-z0-9])?$ ]] || continue
  if grep -qxF -- "$cluster" <<<"$owned"; then
    continue
  fi
  case "$provider" in
    lite) label="com.docker.compose.project=kwok-$cluster" ;;
    kind) label="io.x-k8s.kind.cluster=$cluster" ;;
    *) continue ;;
  esac
  mapfile -t containers < <(docker ps -aq --filter "label=$label")
  if [ "${#containers[@]}" -gt 0 ]; then
    docker rm -f -v "${containers[@]}" >/dev/null
  fi
  # The session's terminal sits on the cluster's network: it and its kubeconfig volume go first.
  terminal=(--filter "label=ckad.platform=terminal" --filter "label=ckad.instance=$instance"
    --filter "label=ckad.cluster=$cluster")
  mapfile -t terminals < <(docker ps -aq "${terminal[@]}")
  if [ "${#terminals[@]}" -gt 0 ]; then
    docker rm -f "${terminals[@]}" >/dev/null
  fi
  mapfile -t volumes < <(docker volume ls -q "${terminal[@]}")
  if [ "${#volumes[@]}" -gt 0 ]; then
    docker volume rm -f "${volumes[@]}" >/dev/null
  fi
  docker network rm "$network" >/dev/null
  rm -rf -- "$state_dir/lite/clusters/$cluster" "$state_dir/kind/$cluster.kind-config.yaml" \
    "$state_dir/kind/$cluster.kubeconfig"
  echo "cleanup-orphans: removed $provider cluster $cluster (${#containers[@]} containers, network $network)"
  removed=$((removed + 1))
done < <(docker network ls --filter "label=ckad.platform" --filter "label=ckad.instance=$instance" \
  --format '{{.Name}}	{{.Label "ckad.platform"}}	{{.Label "ckad.cluster"}}')
echo "cleanup-orphans: $removed orphaned clusters removed"

# Admin kubeconfigs of sessions and members that own nothing any more (`<id>.kubeconfig`, and
# `<id>.<cluster>.kubeconfig` for an exam's other hosts).
shopt -s nullglob
for kubeconfig in "$state_dir"/sessions/*.kubeconfig; do
  id=$(basename "$kubeconfig" .kubeconfig)
  id=${id%%.*}
  grep -qxF -- "$id" <<<"$owners" || rm -f -- "$kubeconfig"
done
