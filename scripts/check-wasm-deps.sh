#!/usr/bin/env bash
# The browser bundle must never link server crates: a runtime, a database driver or a Docker
# client in the wasm tree means a server-only dependency escaped the `ssr` feature.
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden='^(tokio|mio|sqlx|sqlx-.*|bollard|axum|hyper|kube|kube-.*|k8s-openapi|leptos_axum|rcgen)$'
tree=$(cargo tree --locked -p app --target wasm32-unknown-unknown --no-default-features --features hydrate \
  -e normal --prefix none --format '{p}' | awk '{ print $1 }' | sort -u)
found=$(grep -E "$forbidden" <<<"$tree" || true)
if [ -n "$found" ]; then
  echo "server crates in the wasm dependency tree:" $found >&2
  exit 1
fi
echo "wasm dependency tree: $(wc -l <<<"$tree") crates, none of them server-only"
