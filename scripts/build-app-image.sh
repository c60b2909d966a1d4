#!/usr/bin/env bash
# Builds the app's runtime image without a registry: the twin of docker/app/Dockerfile for
# machines that cannot pull base images. Same Debian packages (docker/app/packages), same dpkg
# excludes, same layout, and the Dockerfile's own image configuration (everything below its
# `image configuration` marker), over:
#   - a bookworm root made by mmdebstrap, imported once as ckad-platform/app-base:<key>;
#   - the release server and site (`cargo leptos build --release`), ckad-clusters, tasks/,
#     migrations/, Leptos.toml and the operator scripts;
#   - kwokctl, kubectl and kind from $LITE_BIN_DIR (scripts/build-lite.sh).
# The image is tagged by the hash of its content, ckad-platform/app:<key> (printed on the last
# line) and ckad-platform/app:latest, so a second run with nothing changed only rebuilds nothing
# and hashes. Needs what scripts/setup.sh provides (PATH, LITE_BIN_DIR) and mmdebstrap.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CKAD_CACHE:-$HOME/.cache/ckad-platform}
target=${CARGO_TARGET_DIR:-$root/target}
: "${LITE_BIN_DIR:?LITE_BIN_DIR is not set (source scripts/setup.sh)}"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
repository=ckad-platform/app
say() { printf 'build-app-image: %s\n' "$*" >&2; }

# The Debian root, keyed by its inputs. For Debian's later security updates, remove the base image
# (`docker rmi ckad-platform/app-base:<key>`) and run again.
packages=$(sed -e 's/#.*//' -e '/^\s*$/d' "$root/docker/app/packages" | paste -sd, -)
base_key=$(printf '%s\n' "$packages" "$mirror" "$security_mirror" | cat - "$root/docker/app/dpkg-excludes" |
  sha256sum | cut -c1-16)
base="$repository-base:$base_key"
if ! docker image inspect "$base" >/dev/null 2>&1; then
  say "making the Debian root with mmdebstrap (once per package list)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mmdebstrap --quiet --variant=essential --include="$packages" \
    --dpkgopt="$root/docker/app/dpkg-excludes" --aptopt='Acquire::Languages "none"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$work/root.tar" \
    "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
    "deb $security_mirror bookworm-security main" >&2
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL ckad.platform=app-base' "$work/root.tar" "$base" >/dev/null
  rm -rf "$work"
  trap - EXIT
  # Older roots go once no app image is built on them (the engine refuses while one is).
  docker image ls --filter label=ckad.platform=app-base --format '{{.Repository}}:{{.Tag}}' |
    grep -v -x -e "$base" | xargs -r docker rmi >/dev/null 2>&1 || true
fi

# The release build (a no-op when nothing changed).
say "building the release server and site"
# ckad-clusters comes from the same cargo run: built apart, without cargo-leptos's environment,
# it would invalidate the server's build and the next run would compile everything again.
(cd "$root" && cargo leptos build --release --bin-cargo-args=--bin=ckad-clusters >&2)

# The image's files, in the layout of docker/app/Dockerfile's runtime stage.
context="$cache/app-image/context"
rm -rf "$context"
mkdir -p "$context/rootfs/usr/local/bin" "$context/rootfs/app/scripts"
files="$context/rootfs"
# Hard links where the file system allows: the tools weigh ~120 MB.
place() { cp -lL "$@" 2>/dev/null || cp -L "$@"; }
place "$target/release/ckad-platform" "$target/release/ckad-clusters" "$files/usr/local/bin/"
place "$LITE_BIN_DIR/kwokctl" "$LITE_BIN_DIR/kubectl" "$LITE_BIN_DIR/kind" "$files/usr/local/bin/"
cp -r "$root/target/site" "$files/app/site"
cp -r "$root/tasks" "$root/migrations" "$root/Leptos.toml" "$files/app/"
cp "$root/scripts/backup-db.sh" "$root/scripts/restore-db.sh" "$root/scripts/cleanup-orphans.sh" \
  "$files/app/scripts/"
{
  printf 'FROM %s\nCOPY rootfs/ /\n' "$base"
  sed -n '/^# ---- image configuration/,$p' "$root/docker/app/Dockerfile"
} >"$context/Dockerfile"

key=$( (cd "$context" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)
image="$repository:$key"
if ! docker image inspect "$image" >/dev/null 2>&1; then
  say "building $image"
  DOCKER_BUILDKIT=0 docker build --quiet -t "$image" "$context" >/dev/null
  # Keep the three newest app images; one still in use by a container stays (no --force).
  docker image ls --filter label=ckad.platform=app-image --format '{{.Repository}}:{{.Tag}}' |
    grep -v -x -e "$image" -e "$repository:latest" | tail -n +3 | xargs -r docker rmi >/dev/null 2>&1 || true
fi
docker tag "$image" "$repository:latest"
rm -rf "$context"
echo "$image"
