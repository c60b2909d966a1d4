#!/usr/bin/env bash
# Builds the learner's terminal image without a registry: a Debian rootfs from
# docker/terminal/packages (mmdebstrap), kubectl and helm from $LITE_BIN_DIR (built by
# scripts/build-lite.sh), docker/terminal/rootfs and tasks/charts; then `docker import`. The same
# image as docker/terminal/Dockerfile. Skipped when the engine already holds an image of the same
# inputs (label ckad.terminal.content). Usage: build-terminal-image.sh [tag]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-${TERMINAL_IMAGE:-ckad-terminal:latest}}
: "${LITE_BIN_DIR:?source scripts/setup.sh first}"
say() { printf 'build-terminal-image: %s\n' "$*" >&2; }

# What the image is made of; any change makes a new image.
content=$( (
  cd "$root"
  sha256sum scripts/build-terminal-image.sh docker/terminal/packages
  find docker/terminal/rootfs tasks/charts -type f -print0 | sort -z | xargs -0 sha256sum
  "$LITE_BIN_DIR/kubectl" version --client 2>/dev/null | head -1
  "$LITE_BIN_DIR/helm" version --short
) | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{index .Config.Labels "ckad.terminal.content"}}' "$tag" 2>/dev/null)" = "$content" ]; then
  exit 0
fi

say "building $tag ($content)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mirror="http://deb.debian.org/debian"
# Docs, man pages and translations are no use in a terminal that lives an hour.
mmdebstrap --quiet --variant=essential --include="$(paste -sd, "$root/docker/terminal/packages")" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  bookworm "$rootfs" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin

install -m 0755 "$LITE_BIN_DIR/kubectl" "$LITE_BIN_DIR/helm" "$rootfs/usr/local/bin/"
cp -r "$root/docker/terminal/rootfs/." "$rootfs/"
mkdir -p "$rootfs/opt/charts"
cp -r "$root/tasks/charts/." "$rootfs/opt/charts/"
# The essential variant has no useradd: the user's lines are written as useradd would.
echo 'ckad:x:1000:1000::/home/ckad:/bin/bash' >>"$rootfs/etc/passwd"
echo 'ckad:x:1000:' >>"$rootfs/etc/group"
echo 'ckad:!:20000::::::' >>"$rootfs/etc/shadow"
mkdir -p "$rootfs/home/ckad"
chown 1000:1000 "$rootfs/home/ckad"
"$LITE_BIN_DIR/kubectl" completion bash >"$rootfs/etc/ckad/kubectl-completion.bash"
"$LITE_BIN_DIR/helm" completion bash >"$rootfs/usr/share/bash-completion/completions/helm"
echo '. /etc/ckad/bashrc' >>"$rootfs/etc/bash.bashrc"

tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'USER 1000:1000' --change 'WORKDIR /home/ckad' --change 'ENV HOME=/home/ckad' \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["sleep", "infinity"]' --change 'LABEL ckad.platform=terminal-image' \
  --change "LABEL ckad.terminal.content=$content" - "$tag" >/dev/null
say "done"
