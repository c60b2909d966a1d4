#!/usr/bin/env bash
# Runs every check and test: formatting, clippy on the server and (separately) on the wasm
# bundle, the wasm dependency rule, unit and integration tests against real SQLite files, a real
# PostgreSQL server (the store's tests run on both databases) and a real Docker engine, and
# browser tests in Chromium against the release build. Installs what it needs first. The last
# line is the summary: "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
passed=0
failed=0

step() {
  printf '\n== %s\n' "$1"
}

sum() { awk '{ s += $1 } END { print s + 0 }'; }

# Adds the counts from cargo's "test result:" lines and node's TAP "# pass/# fail" lines.
tally() {
  local log=$1
  passed=$((passed + $(sed -n 's/^test result: .* \([0-9]*\) passed;.*/\1/p' "$log" | sum)
    + $(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | sum)))
  failed=$((failed + $(sed -n 's/^test result: .* \([0-9]*\) failed;.*/\1/p' "$log" | sum)
    + $(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | sum)))
}

step "format"
cargo fmt --all --check

step "clippy: server (ssr)"
cargo clippy --locked -p ckad-platform --all-targets -- -D warnings

step "clippy: app for wasm32 (hydrate)"
cargo clippy --locked -p app --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings

step "the wasm bundle holds no server crates"
scripts/check-wasm-deps.sh

CKAD_APP_IMAGE=$(scripts/build-app-image.sh); export CKAD_APP_IMAGE # the offline app image, for tests/it/deploy.rs
step "PostgreSQL for the tests"
# A server of its own on loopback (TEST_POSTGRES_URL); each test makes a database on it.
postgres_dir=$(mktemp -d)
stop_postgres() { scripts/postgres.sh stop "$postgres_dir" || true; rm -rf "$postgres_dir"; }
trap 'stop_postgres; rm -rf "$logs"' EXIT
eval "$(scripts/postgres.sh start "$postgres_dir")"
echo "TEST_POSTGRES_URL=$TEST_POSTGRES_URL"

# A test that fails half-way can leave its clusters running, and they would share the two cores
# with every test after them, in this run and the next. Every test instance's clusters (networks
# labelled ckad.instance=test-...) go before the tests and after them, by the platform's own
# orphan clean-up with no database, so that nothing is owned.
remove_test_leftovers() {
  local instance
  for instance in $(docker network ls --filter label=ckad.platform \
    --format '{{.Label "ckad.instance"}}' | grep '^test-' | sort -u); do
    DATABASE_URL=sqlite:///nonexistent STATE_DIR=/nonexistent PLATFORM_INSTANCE=$instance \
      scripts/cleanup-orphans.sh | grep -v ' 0 orphaned' || true
  done
}
step "what earlier test runs left on the engine"
remove_test_leftovers
trap 'remove_test_leftovers; stop_postgres; rm -rf "$logs"' EXIT

step "unit and integration tests"
status=0
# The server's tests (one binary, in phases: the groups that each run several clusters at once,
# the graders' proof and the kind clusters (the kind provider's, the kubernetes provider's host
# and the platform deployed on one), run alone so that they never meet on two cores; the tests
# that each make several clusters or run two replicas, one at a time), and the app crate's own
# unit tests (built for the server side).
phase() { "$@" 2>&1 | tee -a "$logs/cargo.log" || status=$?; }
phase cargo test --locked -p ckad-platform --lib --bins
heavy=(exams:: billing::a_full_exam pool:: replicas:: fanout::)
on_kind=(kind:: task_behaviour:: kube_provider:: kube_deploy::)
phase cargo test --locked --no-fail-fast -p ckad-platform --test it -- --skip task_proof:: \
  "${on_kind[@]/#/--skip=}" "${heavy[@]/#/--skip=}"
phase cargo test --locked --no-fail-fast -p ckad-platform --test it -- --test-threads=1 "${heavy[@]}"
phase cargo test --locked -p ckad-platform --test it -- task_proof::
phase cargo test --locked -p ckad-platform --test it -- "${on_kind[@]}"
phase cargo test --locked -p app --features ssr --lib
tally "$logs/cargo.log"
[ "$status" -eq 0 ] || failed=$((failed + 1))

step "browser tests (release build, Chromium)"
# A port of its own, so a running development server is left alone.
LEPTOS_SITE_ADDR=127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export LEPTOS_SITE_ADDR
export DATABASE_URL="sqlite://$logs/browser/ckad.db" RUST_LOG=warn TEST_ARTEFACTS=${TEST_ARTEFACTS:-test-results}
# Its clusters and terminals are its own: a development server's are never reconciled away.
export STATE_DIR="$logs/browser/state" PLATFORM_INSTANCE="browser-$$"
# Sign-in codes go through a real SMTP server; the browser tests read its mailbox.
smtp_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export MAILBOX="$logs/mailbox.jsonl" EMAIL_PROVIDER=smtp SMTP_HOST=127.0.0.1 SMTP_PORT=$smtp_port SMTP_SECURITY=none
export RATE_LIMIT_AUTH_PER_MINUTE=60
export ADMIN_EMAILS=admin@example.com,grants@example.com # the administrators tests/browser/admin.test.mjs and hosts.test.mjs sign in as
"$CKAD_PYTHON" tests/support/smtp_sink.py "$smtp_port" "$MAILBOX" >/dev/null &
smtp_pid=$!
# Payments against Stripe's API double on loopback; tests/browser/billing.test.mjs signs its
# webhooks with the same secret.
stripe_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$STRIPE_MOCK_BIN" -http-addr "127.0.0.1:$stripe_port" -https-addr 127.0.0.1:0 >/dev/null 2>&1 &
stripe_pid=$!
export STRIPE_API_BASE="http://127.0.0.1:$stripe_port" STRIPE_SECRET_KEY=sk_test_browsertests
STRIPE_WEBHOOK_SECRET="whsec_$(python3 -c 'import secrets; print(secrets.token_hex(16))')"; export STRIPE_WEBHOOK_SECRET
# The browser tests' sessions and warm pool end with them (their clusters and terminals would live
# on): every session is marked ended and every member forgotten, then the orphan clean-up removes
# what they owned.
end_browser_sessions() {
  [ -f "$logs/browser/ckad.db" ] || return 0
  sqlite3 "$logs/browser/ckad.db" "UPDATE sessions SET status = 'ended' WHERE status IN ('provisioning', 'started');
    DELETE FROM pool_members"
  scripts/cleanup-orphans.sh >/dev/null
}
trap 'kill $smtp_pid $stripe_pid 2>/dev/null; end_browser_sessions; remove_test_leftovers; stop_postgres; rm -rf "$logs"' EXIT
status=0
cargo leptos end-to-end --release 2>&1 | tee "$logs/browser.log" || status=$?
tally "$logs/browser.log"
if [ "$status" -ne 0 ]; then
  failed=$((failed + 1))
  # The server's output is interleaved with the tests'; a failure's cause is often in its warnings.
  mkdir -p "$TEST_ARTEFACTS" && cp "$logs/browser.log" "$TEST_ARTEFACTS/browser-run.log"
  printf '\n== warnings and errors of the server under the browser tests (whole log: %s)\n' \
    "$TEST_ARTEFACTS/browser-run.log"
  grep -E 'WARN|ERROR|panicked' "$logs/browser.log" | tail -40 || true
fi

# Each failed test's own message, last, where a reader of the run's tail sees it: cargo's panic
# lines (up to the backtrace) and node's "not ok" with its error.
failures() {
  awk '
    /^---- .* stdout ----$/ { name = $2; taking = 0; next }
    /^thread .* panicked at / && name != "" { printf "\n-- %s\n%s\n", name, $0; taking = 1; kept = 0; next }
    taking && (/^stack backtrace:/ || /^note: run with/ || /^---- / || /^failures:$/) { taking = 0 }
    taking && kept++ < 12 { print }
  ' "$logs/cargo.log"
  [ ! -f "$logs/browser.log" ] || awk '
    /^not ok / { printf "\n-- %s\n", $0; taking = 1; kept = 0; next }
    taking && (/^ok / || /^# Subtest/) { taking = 0 }
    taking && kept++ < 12 { print }
  ' "$logs/browser.log"
}
if [ "$failed" -ne 0 ]; then
  printf '\n== the failed tests, each with its message\n'
  failures | cut -c1-400 || true
fi

printf '\ntests: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
