#!/usr/bin/env bash
# Installs what the platform and its tests need, idempotently, then gives the environment the
# other scripts build with (PATH, CARGO_TARGET_DIR, LITE_BIN_DIR, CKAD_PYTHON, CKAD_OIDC_CLASSPATH,
# CKAD_CACHE, STRIPE_MOCK_BIN):
#   source scripts/setup.sh     installs, then exports them into the calling shell
#   scripts/setup.sh            installs, then prints them as `export` lines
# Sourced by scripts/run.sh and scripts/test.sh. Installing runs in a child bash in strict mode,
# so a failure returns an error to the caller without changing the caller's shell options.
#
# Tool builds are cached outside the clone, keyed by version, under $CKAD_CACHE
# (default ~/.cache/ckad-platform), so a second run takes seconds. Nothing is downloaded at run
# time: every tool comes from crates.io, npm or Debian's packages.

_setup_main() {
  # Progress to stderr; the export lines alone to stdout.
  exec 3>&1 1>&2
  local root cache
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cache=${CKAD_CACHE:-$HOME/.cache/ckad-platform}
  mkdir -p "$cache/tools"

  local cargo_leptos_version=0.3.10
  # The CLI must match the wasm-bindgen crate exactly; Cargo.toml pins it.
  local wasm_bindgen_version
  wasm_bindgen_version=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"$/\1/p' "$root/Cargo.toml")
  [ -n "$wasm_bindgen_version" ] || { echo "setup: no exact wasm-bindgen pin in Cargo.toml" >&2; return 1; }

  _setup_debian_packages
  _setup_docker_engine "$cache" "$root"

  local installed
  installed=$(rustup target list --installed)
  if ! grep -qx wasm32-unknown-unknown <<<"$installed"; then
    _say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  installed=$(rustup component list --installed)
  grep -q '^clippy' <<<"$installed" && grep -q '^rustfmt' <<<"$installed" || rustup component add clippy rustfmt

  _setup_cargo_tool "$cache" cargo-leptos "$cargo_leptos_version" cargo-leptos \
    --locked --features no_downloads
  # Not --locked: its lock names a webpki-roots release the registry here does not serve.
  _setup_cargo_tool "$cache" wasm-bindgen-cli "$wasm_bindgen_version" wasm-bindgen

  _setup_node_modules "$root" "$cache"
  _setup_site_assets "$root"
  local python oidc_classpath
  python=$(_setup_python "$root" "$cache")
  oidc_classpath=$(_setup_oidc_provider "$root" "$cache")

  # The `lite` cluster binaries (Kubernetes, etcd, kwok, kind) from source, and their images.
  command -v go >/dev/null || { _say "Go is needed to build the lite cluster binaries"; return 1; }
  local lite_bin_dir stripe_mock
  lite_bin_dir=$(CKAD_CACHE=$cache "$root/scripts/build-lite.sh")
  stripe_mock=$(_setup_stripe_mock "$cache")
  # The offline node image of `kind` clusters, from the same Kubernetes build.
  CKAD_CACHE=$cache "$root/scripts/build-kind-node.sh" >/dev/null
  # The learners' terminal image, from Debian packages and the kubectl/helm just built.
  LITE_BIN_DIR=$lite_bin_dir "$root/scripts/build-terminal-image.sh"

  # The tools above come first: npm's binaryen, never Debian's (108 breaks the bundle).
  local path="$cache/tools/cargo-leptos-$cargo_leptos_version/bin:$cache/tools/wasm-bindgen-cli-$wasm_bindgen_version/bin:$root/node_modules/.bin:$PATH"
  printf 'export %s=%q\n' PATH "$path" CARGO_TARGET_DIR "${CARGO_TARGET_DIR:-$cache/target}" \
    LITE_BIN_DIR "$lite_bin_dir" CKAD_PYTHON "$python" CKAD_OIDC_CLASSPATH "$oidc_classpath" \
    CKAD_CACHE "$cache" STRIPE_MOCK_BIN "$stripe_mock" >&3
}

_say() { printf 'setup: %s\n' "$*" >&2; }

_setup_debian_packages() {
  # What is missing, by the command each package provides.
  local missing=() pair
  for pair in jq:jq docker.io:dockerd chromium:chromium sqlite3:sqlite3 iptables:iptables caddy:caddy docker-compose:docker-compose mmdebstrap:mmdebstrap systemd:systemd-analyze; do
    command -v "${pair#*:}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair#*:}" ] || missing+=("${pair%%:*}")
  done
  # The tests' PostgreSQL server (scripts/postgres.sh); its programs are off PATH, by version.
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    _say "missing Debian packages: ${missing[*]} (run as root, or install them: apt-get install ${missing[*]})"
    return 1
  fi
  _say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

_setup_docker_engine() {
  local cache=$1 root=$2 runtime_args=()
  # Hosts that withhold CAP_SYS_RESOURCE (bit 24 of the bounding set) cannot run privileged
  # containers, so kind's nodes fail; an engine whose default runtime drops that one capability
  # runs them (docker/engine/runc-without-sys-resource). Ordinary hosts are left as they are.
  if ! _setup_host_has_cap_sys_resource; then
    local wrapper="$cache/engine/runc-without-sys-resource"
    mkdir -p "$cache/engine"
    cmp -s "$root/docker/engine/runc-without-sys-resource" "$wrapper" ||
      install -m 0755 "$root/docker/engine/runc-without-sys-resource" "$wrapper"
    runtime_args=(--add-runtime "ckad-runc=$wrapper" --default-runtime ckad-runc)
  fi
  if docker info >/dev/null 2>&1; then
    [ ${#runtime_args[@]} -eq 0 ] && return 0
    [ "$(docker info --format '{{.DefaultRuntime}}')" = ckad-runc ] && return 0
    # An engine this script started earlier is restarted with the runtime; anyone else's is theirs.
    if [ "$(cat "$cache/dockerd.pid" 2>/dev/null)" != "$(pidof dockerd)" ]; then
      _say "warning: this host withholds CAP_SYS_RESOURCE and the running Docker engine has no runtime"
      _say "  for it, so kind clusters cannot start; add to daemon.json: \"runtimes\": {\"ckad-runc\":"
      _say "  {\"path\": \"${runtime_args[1]#ckad-runc=}\"}}, \"default-runtime\": \"ckad-runc\", and restart it"
      return 0
    fi
    _say "restarting dockerd with a runtime for this host (it withholds CAP_SYS_RESOURCE)"
    kill "$(cat "$cache/dockerd.pid")"
    local i
    for i in $(seq 1 60); do pidof dockerd >/dev/null || break; sleep 0.5; done
  fi
  if [ "$(id -u)" -ne 0 ]; then
    _say "no Docker engine answers and only root can start one"
    return 1
  fi
  _say "starting dockerd (log: $cache/dockerd.log)"
  # Its own session, and none of our descriptors: the export pipe (fd 3) must reach EOF.
  # Containers' logs are capped (the control planes'; terminals keep none), so no session fills the disk.
  setsid nohup dockerd "${runtime_args[@]}" --log-opt max-size=10m --log-opt max-file=2 </dev/null >"$cache/dockerd.log" 2>&1 3>&- &
  echo $! >"$cache/dockerd.pid"
  local i
  for i in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  _say "dockerd did not answer within 30 s; see $cache/dockerd.log"
  return 1
}

_setup_host_has_cap_sys_resource() {
  local bounding
  bounding=$(sed -n 's/^CapBnd:\t//p' /proc/self/status)
  (( (16#$bounding >> 24) & 1 ))
}

# _setup_cargo_tool CACHE CRATE VERSION BINARY [cargo install flags...]
_setup_cargo_tool() {
  local cache=$1 crate=$2 version=$3 binary=$4
  shift 4
  local dir="$cache/tools/$crate-$version"
  [ -x "$dir/bin/$binary" ] && return 0
  _say "building $crate $version (once; cached in $dir)"
  cargo install --quiet --root "$dir.partial" "$crate" --version "$version" "$@"
  rm -rf "$dir" && mv "$dir.partial" "$dir"
}

# node_modules is installed once per lockfile into the cache and linked into the clone.
_setup_node_modules() {
  local root=$1 cache=$2 key dir
  key=$(cat "$root/package.json" "$root/package-lock.json" | sha256sum | cut -c1-16)
  dir="$cache/node/$key"
  if [ ! -d "$dir/node_modules" ]; then
    _say "installing npm packages from package-lock.json (cached in $dir)"
    rm -rf "$dir.partial" && mkdir -p "$dir.partial"
    cp "$root/package.json" "$root/package-lock.json" "$dir.partial/"
    (cd "$dir.partial" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    rm -rf "$dir" && mv "$dir.partial" "$dir"
  fi
  if [ "$(readlink "$root/node_modules" 2>/dev/null)" != "$dir/node_modules" ]; then
    rm -rf "$root/node_modules"
    ln -s "$dir/node_modules" "$root/node_modules"
  fi
}

# Test-only Python tools (a real SMTP server) in a virtualenv per requirements file; prints its python.
_setup_python() {
  local root=$1 cache=$2 key dir
  key=$(sha256sum "$root/tests/support/requirements.txt" | cut -c1-16)
  dir="$cache/python/$key"
  if [ ! -x "$dir/bin/python" ]; then
    _say "installing test Python packages (cached in $dir)"
    rm -rf "$dir.partial"
    python3 -m venv "$dir.partial"
    "$dir.partial/bin/pip" install --quiet --disable-pip-version-check -r "$root/tests/support/requirements.txt"
    rm -rf "$dir" && mv "$dir.partial" "$dir"
  fi
  echo "$dir/bin/python"
}

# A real OpenID Connect provider for the Google sign-in tests (mock-oauth2-server from Maven
# Central); prints its Java classpath, resolved once per pom.
_setup_oidc_provider() {
  local root=$1 cache=$2 pom="$root/tests/support/oidc/pom.xml" file
  command -v java >/dev/null && command -v mvn >/dev/null || { _say "Java and Maven are needed for the OIDC tests"; return 1; }
  file="$cache/oidc/$(sha256sum "$pom" | cut -c1-16).classpath"
  if [ ! -s "$file" ]; then
    _say "resolving the test OIDC provider from Maven Central"
    mkdir -p "$cache/oidc"
    mvn -q -f "$pom" dependency:build-classpath -Dmdep.outputFile="$file.partial" >&2
    mv "$file.partial" "$file"
  fi
  cat "$file"
}

# Stripe's own API double (stripe-mock) for the payment tests, built once per version from the Go
# module proxy; prints its path.
_setup_stripe_mock() {
  local cache=$1 version=v0.203.0 dir
  dir="$cache/tools/stripe-mock-$version"
  if [ ! -x "$dir/bin/stripe-mock" ]; then
    _say "building stripe-mock $version (once; cached in $dir)"
    rm -rf "$dir.partial"
    GOBIN="$dir.partial/bin" CGO_ENABLED=0 go install "github.com/stripe/stripe-mock@$version" >&2
    rm -rf "$dir" && mv "$dir.partial" "$dir"
  fi
  echo "$dir/bin/stripe-mock"
}

# xterm.js and asciinema-player are served from the site's own assets, never from a CDN.
_setup_site_assets() {
  local root=$1 vendor="$root/public/vendor"
  mkdir -p "$vendor"
  local file
  for file in \
    @xterm/xterm/lib/xterm.js @xterm/xterm/css/xterm.css \
    @xterm/addon-fit/lib/addon-fit.js @xterm/addon-web-links/lib/addon-web-links.js \
    asciinema-player/dist/bundle/asciinema-player.min.js asciinema-player/dist/bundle/asciinema-player.css; do
    cmp -s "$root/node_modules/$file" "$vendor/$(basename "$file")" ||
      cp "$root/node_modules/$file" "$vendor/"
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  _setup_main
else
  _setup_exports=$(bash "${BASH_SOURCE[0]}") && eval "$_setup_exports"
fi
