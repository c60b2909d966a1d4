#!/usr/bin/env bash
# Runs the platform on http://127.0.0.1:3000 with its embedded defaults: a SQLite file under
# data/, `lite` clusters, and the development mail outbox (codes appear in the log). A `.env`
# file, if present, overrides them (see .env.example). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec cargo leptos serve --release
