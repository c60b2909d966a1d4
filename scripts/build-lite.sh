#!/usr/bin/env bash
# Builds the binaries behind `lite` clusters from source with the machine's Go, through the Go
# module proxy, once, into $CKAD_CACHE/lite/<versions>/bin (printed on the last line):
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  (k8s.io/kubernetes)
#   etcd                                                              (go.etcd.io/etcd/server/v3)
#   kwok, kwokctl                                                     (sigs.k8s.io/kwok)
#   kind                                                              (sigs.k8s.io/kind, for the `kind` provider's own tests)
#   helm                                                              (helm.sh/helm/v3, for the terminal image and Helm tasks)
# With the argument `node`, also kubelet, kubeadm and kube-proxy for the kind node image
# (scripts/build-kind-node.sh): same module, same Go build cache, so only they are compiled.
# Each tool is built in a module of its own so that their library versions never meet.
# Then it makes sure the local Docker engine holds the control-plane images kwokctl runs, built
# from the same binaries (no registry is needed): ckad-lite/<component>:<version>.
set -euo pipefail

# shellcheck source=lite-versions.env
source "$(dirname "$0")/lite-versions.env"

cache=${CKAD_CACHE:-$HOME/.cache/ckad-platform}
out="$cache/lite/k8s-$KUBERNETES-etcd-$ETCD-kwok-$KWOK-kind-$KIND"
bin="$out/bin"
kube_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
[ "${1:-}" = node ] && kube_cmds+=(kubelet kubeadm kube-proxy)
want=("${kube_cmds[@]}" etcd kwok kwokctl kind)

have_all() {
  local b
  for b in "${want[@]}"; do [ -x "$bin/$b" ] || return 1; done
}
say() { printf 'build-lite: %s\n' "$*" >&2; }
work="$out/src"
# One build at a time per cache: a second caller (another clone's set-up) waits, then finds it done.
mkdir -p "$cache/lite"
exec 9>"$cache/lite/.lock"
flock 9
export CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=local

# A module in $work/$1 requiring $2@$3; extra lines of go.mod follow on stdin.
module() {
  local dir="$work/$1"
  rm -rf "$dir" && mkdir -p "$dir"
  { printf 'module ckad.local/%s\n\n' "$1"; cat; } >"$dir/go.mod"
  (cd "$dir" && go mod edit -require="$2@$3")
}

kubernetes() {
  local missing=() c
  for c in "${kube_cmds[@]}"; do [ -x "$bin/$c" ] || missing+=("$c"); done
  [ "${#missing[@]}" = 0 ] && return 0
  say "building Kubernetes $KUBERNETES: ${missing[*]} (several minutes, once)"
  # k8s.io/kubernetes points its staging modules at ./staging; map each to its published twin.
  local gomod minor replaces
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
  minor=v0.${KUBERNETES#v1.}
  replaces=$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#replace \1 => \1 '"$minor"'#p' "$gomod")
  [ -n "$replaces" ] || { say "no staging modules found in $gomod"; return 1; }
  # Their go.mod declares go 1.25.0 and godebug default=go1.25; the wrapper must too.
  module kubernetes k8s.io/kubernetes "$KUBERNETES" <<MOD
go 1.25.0

godebug default=go1.25

$replaces
MOD
  local pkg=k8s.io/kubernetes/cmd version_flags=() minor_number pkgs=()
  minor_number=${KUBERNETES#v1.}
  minor_number=${minor_number%%.*}
  for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    version_flags+=("-X $v.gitVersion=$KUBERNETES" "-X $v.gitMajor=1" "-X $v.gitMinor=$minor_number"
      "-X $v.gitTreeState=clean")
  done
  for c in "${missing[@]}"; do pkgs+=("$pkg/$c"); done
  (cd "$work/kubernetes" &&
    go get "${pkgs[@]/%/@$KUBERNETES}" &&
    go build -ldflags "-s -w ${version_flags[*]}" -o "$bin/" "${pkgs[@]}")
}

etcd() {
  [ -x "$bin/etcd" ] && return 0
  say "building etcd $ETCD"
  # The server module's root package is etcd's main; `go install` refuses it (its go.mod has
  # replace lines), so a wrapper module requires it instead.
  module etcd go.etcd.io/etcd/server/v3 "$ETCD" </dev/null
  (cd "$work/etcd" && go get "go.etcd.io/etcd/server/v3@$ETCD" &&
    go build -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3)
}

kwok() {
  [ -x "$bin/kwok" ] && [ -x "$bin/kwokctl" ] && return 0
  say "building kwok and kwokctl $KWOK"
  GOBIN="$bin" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK"
}

kind() {
  [ -x "$bin/kind" ] && return 0
  say "building kind $KIND"
  GOBIN="$bin" go install -ldflags "-s -w" "sigs.k8s.io/kind@$KIND"
}

# Helm is no part of a cluster: it is kept apart (its own cache key) and linked into the bin dir.
helm() {
  local dir="$cache/tools/helm-$HELM"
  if [ ! -x "$dir/helm" ]; then
    say "building helm $HELM"
    GOBIN="$dir" go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM" \
      "helm.sh/helm/v3/cmd/helm@$HELM"
  fi
  ln -sfn "$dir/helm" "$bin/helm"
}

# One image holding every control-plane binary, tagged once per component with the version
# kwokctl reads from the tag. Static binaries need nothing else but a /tmp.
images() {
  local tags=("ckad-lite/etcd:$ETCD" "ckad-lite/kube-apiserver:$KUBERNETES"
    "ckad-lite/kube-controller-manager:$KUBERNETES" "ckad-lite/kube-scheduler:$KUBERNETES" "ckad-lite/kwok:$KWOK")
  local tag missing=0
  for tag in "${tags[@]}"; do docker image inspect "$tag" >/dev/null 2>&1 || missing=1; done
  [ "$missing" = 0 ] && return 0
  say "importing the control-plane image into the Docker engine"
  local rootfs="$out/rootfs"
  rm -rf "$rootfs" && mkdir -p "$rootfs/usr/local/bin" "$rootfs/tmp" "$rootfs/etc"
  chmod 1777 "$rootfs/tmp"
  cp "$bin"/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler,kwok} "$rootfs/usr/local/bin/"
  echo 'root:x:0:0:root:/:/sbin/nologin' >"$rootfs/etc/passwd"
  local bundle="ckad-lite/bundle:k8s-$KUBERNETES-etcd-$ETCD-kwok-$KWOK"
  tar -C "$rootfs" -c . | docker import --change 'ENV PATH=/usr/local/bin' \
    --change 'LABEL ckad.platform=lite-image' - "$bundle" >/dev/null
  rm -rf "$rootfs"
  for tag in "${tags[@]}"; do docker tag "$bundle" "$tag"; done
}

if ! have_all; then
  mkdir -p "$bin" "$work"
  kubernetes
  etcd
  kwok
  kind
  have_all
  rm -rf "$work"
fi
helm
images
echo "$bin"
