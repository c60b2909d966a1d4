#!/usr/bin/env bash
# Builds the offline node image of the `kind` provider, once per version set, and prints its tag:
# ckad-kind/node:<Kubernetes>-r<revision>. Nothing comes from a container registry:
#   userland        Debian bookworm by mmdebstrap (systemd 252 boots on cgroup v1 hosts too),
#                   with containerd, runc and the CNI plugins of Debian
#   kind's files    images/base/files of sigs.k8s.io/kind (Go module cache): entrypoint, units,
#                   containerd config
#   Kubernetes      kubelet, kubeadm, kube-proxy and the control plane from scripts/build-lite.sh
#                   (same module and Go build cache as `lite`)
#   images          preloaded in containerd's k8s.io namespace under exactly the names kubeadm
#                   asks for: the control plane, kube-proxy, etcd, CoreDNS, pause (built from the
#                   kubernetes module's pause.c), and local-path-provisioner for PVCs
#   pod network     a static bridge conflist (docker/kind-node/), no pods needed; NetworkPolicy
#                   enforced by kube-router's policy controller alone (iptables and ipset; the
#                   nftables queueing kube-network-policies needs is missing from some kernels)
#   workloads       working stand-ins, from Debian, for the images tasks name (busybox, nginx,
#                   httpd, redis, postgres: docker/kind-node/workloads/), preloaded likewise and
#                   served by a read-only registry on the node's loopback that containerd mirrors
#                   docker.io to, so that `:latest` and `imagePullPolicy: Always` pull offline
# Pieces are cached under $CKAD_CACHE/kind-node/<versions>/ (the images archive per revision);
# the image is assembled from them when the engine lacks it. Every stage says how long it took.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lite-versions.env
source "$root/scripts/lite-versions.env"
# shellcheck source=kind-node-versions.env
source "$root/scripts/kind-node-versions.env"

cache=${CKAD_CACHE:-$HOME/.cache/ckad-platform}
out="$cache/kind-node/k8s-$KUBERNETES-etcd-$ETCD_IMAGE-coredns-$COREDNS-lpp-$LOCAL_PATH_PROVISIONER-kind-$KIND"
tag="ckad-kind/node:$KUBERNETES-r$KIND_NODE_REVISION"
suite=bookworm
mirrors=("deb http://deb.debian.org/debian $suite main"
  "deb http://deb.debian.org/debian $suite-updates main"
  "deb http://deb.debian.org/debian-security $suite-security main")

say() { printf 'build-kind-node: %s\n' "$*" >&2; }
# `stage NAME command...`: runs it and says how long it took.
stage() {
  local name=$1 started=$SECONDS
  shift
  "$@"
  say "$name: $((SECONDS - started)) s"
}

mkdir -p "$out/bin"
exec 9>"$cache/kind-node/.lock"
flock 9

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

export CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=local
work=$(mktemp -d "$out/work.XXXXXX")
build=ckad-kind-node-build-$$
cleanup() {
  docker rm -f "$build" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The node's userland: what kind's base Dockerfile installs, from Debian.
userland_node() {
  [ -s "$out/node-userland.tar" ] && return 0
  mmdebstrap --variant=minbase --include=systemd,systemd-sysv,dbus,containerd,runc,containernetworking-plugins,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,fuse-overlayfs,bash,ca-certificates,curl,jq,procps,e2fsprogs,socat \
    "$suite" "$out/node-userland.part.tar" "${mirrors[@]}"
  mv "$out/node-userland.part.tar" "$out/node-userland.tar"
}

# kube-proxy programs iptables; its image needs the tools and little else.
userland_proxy() {
  [ -s "$out/proxy-userland.tar" ] && return 0
  mmdebstrap --variant=essential --include=iptables,conntrack,nftables,kmod \
    "$suite" "$out/proxy-userland.part.tar" "${mirrors[@]}"
  mv "$out/proxy-userland.part.tar" "$out/proxy-userland.tar"
}

# kube-router's policy controller runs iptables, iptables-restore and ipset.
userland_firewall() {
  [ -s "$out/firewall-userland.tar" ] && return 0
  mmdebstrap --variant=essential --include=iptables,ipset,kmod \
    "$suite" "$out/firewall-userland.part.tar" "${mirrors[@]}"
  mv "$out/firewall-userland.part.tar" "$out/firewall-userland.tar"
}

# Debian's busybox with the C library it links (the static one cannot resolve names): the
# `busybox` image, and local-path-provisioner's helper.
userland_busybox() {
  [ -s "$out/busybox-glibc.tar" ] && return 0
  mmdebstrap --variant=extract --include=busybox,libc6 "$suite" "$out/busybox-glibc.part.tar" "${mirrors[@]}"
  mv "$out/busybox-glibc.part.tar" "$out/busybox-glibc.tar"
}

# Debian's Docker registry (distribution 2.8), for the node's read-only mirror.
userland_registry() {
  [ -s "$out/registry.tar" ] && return 0
  mmdebstrap --variant=extract --include=docker-registry "$suite" "$out/registry.part.tar" "${mirrors[@]}"
  mv "$out/registry.part.tar" "$out/registry.tar"
}

# One userland for the server images, so that containerd stores its layer once.
userland_workloads() {
  [ -s "$out/workloads-userland.tar" ] && return 0
  mmdebstrap --variant=essential \
    --include=nginx-light,apache2,redis-server,postgresql-15,curl,netcat-openbsd,procps,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$suite" "$out/workloads-userland.part.tar" "${mirrors[@]}"
  mv "$out/workloads-userland.part.tar" "$out/workloads-userland.tar"
}

kubernetes() {
  lite_bin=$(CKAD_CACHE=$cache "$root/scripts/build-lite.sh" node)
  # kubeadm must ask for exactly the images this script preloads.
  local asked expected
  asked=$("$lite_bin/kubeadm" config images list --kubernetes-version "$KUBERNETES" 2>/dev/null | sort)
  expected=$(images_kubeadm_wants | sort)
  if [ "$asked" != "$expected" ]; then
    say "kubeadm $KUBERNETES asks for other images than kind-node-versions.env names:"
    diff <(echo "$expected") <(echo "$asked") >&2 || true
    return 1
  fi
}

# `final-name staged-name` for every image the node holds. They are staged in the local engine
# under ckad-kind-stage/ so that no name the engine's other users know is touched, and renamed
# inside the node.
staged() {
  local name
  for name in "$@"; do echo "$name ckad-kind-stage/$name"; done
}

workload_names() {
  local library=docker.io/library
  echo "$library/busybox:1.36 $library/busybox:latest ckad.local/local-path-helper:$LOCAL_PATH_PROVISIONER"
  echo "$library/nginx:1.27 $library/nginx:1.26 $library/nginx:latest"
  echo "$library/httpd:2.4 $library/httpd:latest"
  echo "$library/redis:7 $library/redis:latest"
  echo "$library/postgres:17 $library/postgres:16 $library/postgres:15 $library/postgres:latest"
}

images_kubeadm_wants() {
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    echo "registry.k8s.io/$c:$KUBERNETES"
  done
  echo "registry.k8s.io/coredns/coredns:$COREDNS"
  echo "registry.k8s.io/pause:$PAUSE"
  echo "registry.k8s.io/etcd:$ETCD_IMAGE"
}

# The etcd server kubeadm's manifests run, in a wrapper module (etcd's go.mod has replaces).
etcd() {
  [ -x "$out/bin/etcd" ] && return 0
  local version=v${ETCD_IMAGE%-*}
  mkdir -p "$work/etcd"
  printf 'module ckad.local/kind-etcd\n' >"$work/etcd/go.mod"
  (cd "$work/etcd" && go get "go.etcd.io/etcd/server/v3@$version" &&
    go build -ldflags "-s -w" -o "$out/bin/etcd" go.etcd.io/etcd/server/v3)
}

coredns() {
  [ -x "$out/bin/coredns" ] && return 0
  GOBIN="$out/bin" go install -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS"
}

local_path_provisioner() {
  [ -x "$out/bin/local-path-provisioner" ] && return 0
  GOBIN="$out/bin" go install -ldflags "-s -w" "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER"
}

kube_router() {
  [ -x "$out/bin/kube-router-$KUBE_ROUTER" ] && return 0
  GOBIN="$work/kube-router" go install -ldflags "-s -w" \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER"
  mv "$work/kube-router/kube-router" "$out/bin/kube-router-$KUBE_ROUTER"
}

pause() {
  [ -x "$out/bin/pause" ] && return 0
  local src
  src=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE-ckad" -o "$out/bin/pause" "$src/build/pause/linux/pause.c"
  strip "$out/bin/pause"
}

# `image TAG DIR CHANGE...`: a one-layer image of DIR in the local engine.
image() {
  local tag=$1 dir=$2
  shift 2
  local changes=(--change 'LABEL ckad.platform=kind-node-build') c
  for c in "$@"; do changes+=(--change "$c"); done
  mkdir -p "$dir/tmp" "$dir/etc"
  chmod 1777 "$dir/tmp"
  [ -e "$dir/etc/passwd" ] || echo 'root:x:0:0:root:/root:/sbin/nologin' >"$dir/etc/passwd"
  tar -C "$dir" -c . | docker import "${changes[@]}" - "$tag" >/dev/null
}

# `derive BASE "DOCKERFILE LINES" TAG...`: BASE with other settings and no new layer.
derive() {
  local base=$1 lines=$2 tags=() t
  shift 2
  for t in "$@"; do tags+=(--tag "$t"); done
  printf 'FROM %s\n%s\n' "$base" "$lines" |
    DOCKER_BUILDKIT=0 docker build --quiet --label ckad.platform=kind-node-build "${tags[@]}" - >/dev/null
}

# The images a cluster runs, saved as one archive for containerd.
component_images() {
  [ -s "$out/images-r$KIND_NODE_REVISION.tar" ] && return 0
  local r="$work/images" path='ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin'
  mkdir -p "$r/control-plane/usr/local/bin" "$r/etcd/usr/local/bin" "$r/proxy" "$r/coredns" \
    "$r/pause" "$r/lpp/usr/local/bin" "$r/busybox" "$r/kube-router"
  cp "$lite_bin"/{kube-apiserver,kube-controller-manager,kube-scheduler} "$r/control-plane/usr/local/bin/"
  cp "$out/bin/etcd" "$r/etcd/usr/local/bin/"
  tar -C "$r/proxy" -xf "$out/proxy-userland.tar"
  cp "$lite_bin/kube-proxy" "$r/proxy/usr/local/bin/"
  cp "$out/bin/coredns" "$r/coredns/coredns"
  cp "$out/bin/pause" "$r/pause/pause"
  cp "$out/bin/local-path-provisioner" "$r/lpp/usr/local/bin/"
  tar -C "$r/kube-router" -xf "$out/firewall-userland.tar"
  cp "$out/bin/kube-router-$KUBE_ROUTER" "$r/kube-router/usr/local/bin/kube-router"

  local k8s=ckad-kind-stage/registry.k8s.io c
  image "$k8s/kube-apiserver:$KUBERNETES" "$r/control-plane" "$path"
  for c in kube-controller-manager kube-scheduler; do
    docker tag "$k8s/kube-apiserver:$KUBERNETES" "$k8s/$c:$KUBERNETES"
  done
  image "$k8s/etcd:$ETCD_IMAGE" "$r/etcd" "$path"
  image "$k8s/kube-proxy:$KUBERNETES" "$r/proxy" "$path"
  image "$k8s/coredns/coredns:$COREDNS" "$r/coredns" 'ENTRYPOINT ["/coredns"]'
  image "$k8s/pause:$PAUSE" "$r/pause" 'ENTRYPOINT ["/pause"]'
  image "ckad-kind-stage/ckad.local/local-path-provisioner:$LOCAL_PATH_PROVISIONER" "$r/lpp" "$path"
  image "ckad-kind-stage/ckad.local/kube-router:$KUBE_ROUTER" "$r/kube-router" "$path" \
    'ENTRYPOINT ["/usr/local/bin/kube-router"]'
  workload_images "$r"

  local tags=() final stage
  while read -r final stage; do tags+=("$stage"); done < <(node_images)
  docker save -o "$out/images-r$KIND_NODE_REVISION.part.tar" "${tags[@]}"
  docker rmi "${tags[@]}" >/dev/null
  mv "$out/images-r$KIND_NODE_REVISION.part.tar" "$out/images-r$KIND_NODE_REVISION.tar"
}

# Every image the node holds: `final-name staged-name` lines.
node_images() {
  # shellcheck disable=SC2046 # one name per word
  staged $(images_kubeadm_wants) "ckad.local/local-path-provisioner:$LOCAL_PATH_PROVISIONER" \
    "ckad.local/kube-router:$KUBE_ROUTER" $(workload_names)
}

# busybox, nginx, httpd, redis and postgres that behave as the official images do for tasks:
# their commands, ports, paths and environment (docker/kind-node/workloads/).
workload_images() {
  local r=$1/workloads files="$root/docker/kind-node/workloads" stage=ckad-kind-stage/docker.io/library
  local base="ckad-kind-stage/workloads-base:$KUBERNETES"
  busybox_rootfs "$1/busybox"
  # shellcheck disable=SC2046
  image "$stage/busybox:1.36" "$1/busybox" 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["sh"]'
  docker tag "$stage/busybox:1.36" "$stage/busybox:latest"
  docker tag "$stage/busybox:1.36" "ckad-kind-stage/ckad.local/local-path-helper:$LOCAL_PATH_PROVISIONER"

  mkdir -p "$r"
  tar -C "$r" -xf "$out/workloads-userland.tar"
  rm -f "$r"/etc/nginx/sites-enabled/*
  mkdir -p "$r/etc/nginx/conf.d" "$r/usr/share/nginx/html" "$r/usr/local/apache2/htdocs" "$r/data"
  cp "$files/nginx.conf" "$r/etc/nginx/nginx.conf"
  cp "$files/nginx-default.conf" "$r/etc/nginx/conf.d/default.conf"
  cp "$files/nginx-index.html" "$r/usr/share/nginx/html/index.html"
  echo '<html><body><h1>An error occurred.</h1></body></html>' >"$r/usr/share/nginx/html/50x.html"
  echo '<html><body><h1>It works!</h1></body></html>' >"$r/usr/local/apache2/htdocs/index.html"
  cp "$files/httpd-site.conf" "$r/etc/apache2/sites-available/000-default.conf"
  cp "$files/httpd-foreground" "$files/redis-entrypoint" "$files/postgres-entrypoint" "$r/usr/local/bin/"
  # Clusters are made by each container's entrypoint; JIT is off, so LLVM (and its Z3) can go;
  # locale sources are for localedef, which nothing runs.
  rm -rf "$r/var/lib/postgresql/15" "$r/etc/postgresql/15" "$r"/usr/lib/x86_64-linux-gnu/libLLVM* \
    "$r"/usr/lib/x86_64-linux-gnu/libz3.* "$r/usr/share/i18n"
  image "$base" "$r" 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/15/bin'
  derive "$base" $'EXPOSE 80\nSTOPSIGNAL SIGQUIT\nCMD ["nginx", "-g", "daemon off;"]' \
    "$stage/nginx:1.27" "$stage/nginx:1.26" "$stage/nginx:latest"
  derive "$base" $'EXPOSE 80\nSTOPSIGNAL SIGWINCH\nCMD ["httpd-foreground"]' "$stage/httpd:2.4" "$stage/httpd:latest"
  derive "$base" $'WORKDIR /data\nEXPOSE 6379\nENTRYPOINT ["redis-entrypoint"]\nCMD ["redis-server"]' \
    "$stage/redis:7" "$stage/redis:latest"
  derive "$base" $'ENV PGDATA=/var/lib/postgresql/data\nEXPOSE 5432\nSTOPSIGNAL SIGINT\nENTRYPOINT ["postgres-entrypoint"]\nCMD ["postgres"]' \
    "$stage/postgres:17" "$stage/postgres:16" "$stage/postgres:15" "$stage/postgres:latest"
  docker rmi "$base" >/dev/null
}

# Debian's busybox with a link per applet.
busybox_rootfs() {
  local dir=$1 applet
  tar -C "$dir" -xf "$out/busybox-glibc.tar"
  install -m 0755 "$root/docker/kind-node/workloads/busybox-wget" "$dir/bin/wget"
  for applet in $(chroot "$dir" /bin/busybox --list); do
    [ -e "$dir/bin/$applet" ] || ln -s busybox "$dir/bin/$applet"
  done
}

# kind's base image, as its Dockerfile makes it, on the Debian userland.
node_rootfs() {
  local r="$work/node" kind_dir files
  kind_dir=$(go mod download -json "sigs.k8s.io/kind@$KIND" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  files="$kind_dir/images/base/files"
  mkdir -p "$r"
  tar -C "$r" -xf "$out/node-userland.tar"
  cp -r --no-preserve=mode "$files/." "$r/"
  chmod 0755 "$r"/usr/local/bin/* "$r"/kind/bin/*
  find "$r/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
  rm -f "$r"/lib/systemd/system/multi-user.target.wants/* "$r"/etc/systemd/system/*.wants/* \
    "$r"/lib/systemd/system/local-fs.target.wants/* "$r"/lib/systemd/system/sockets.target.wants/*udev* \
    "$r"/lib/systemd/system/sockets.target.wants/*initctl* "$r"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >>"$r/etc/systemd/journald.conf"
  ln -sf /usr/lib/systemd/systemd "$r/sbin/init"
  chroot "$r" systemctl enable kubelet.service containerd.service undo-mount-hacks.service
  chroot "$r" systemctl mask systemd-binfmt.service
  mkdir -p "$r/etc/kubernetes/manifests"

  # Debian's containerd and CNI plugins where kind's units and containerd's defaults look.
  ln -s /usr/bin/containerd "$r/usr/local/bin/containerd"
  mkdir -p "$r/opt/cni" "$r/etc/cni/net.d"
  ln -s /usr/lib/cni "$r/opt/cni/bin"
  cp "$root/docker/kind-node/10-bridge.conflist" "$r/etc/cni/net.d/"
  chroot "$r" ctr oci spec |
    jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
    jq 'del(.process.rlimits)' >"$r/etc/containerd/cri-base.json"
  # The pause image preloaded below, not kind's default.
  sed -i "s#^\(\s*sandbox_image = \).*#\1\"registry.k8s.io/pause:$PAUSE\"#" "$r/etc/containerd/config.toml"
  grep -q "pause:$PAUSE" "$r/etc/containerd/config.toml"
  # The registry below serves layers from the content store: containerd must keep them.
  sed -i 's/discard_unpacked_layers = true/discard_unpacked_layers = false/' "$r/etc/containerd/config.toml"
  grep -q 'discard_unpacked_layers = false' "$r/etc/containerd/config.toml"
  cat >>"$r/etc/containerd/config.toml" <<'TOML'

# The node's read-only registry of its preloaded images (docker/kind-node/ckad-registry.yml).
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
  endpoint = ["http://127.0.0.1:5000"]
TOML
  mkdir -p "$work/registry"
  tar -C "$work/registry" -xf "$out/registry.tar"
  cp "$work/registry/usr/bin/docker-registry" "$r/usr/local/bin/"
  cp "$root/docker/kind-node/ckad-registry.yml" "$r/etc/"
  cp "$root/docker/kind-node/ckad-registry.service" "$r/etc/systemd/system/"
  chroot "$r" systemctl enable ckad-registry.service

  cp "$lite_bin"/{kubelet,kubeadm,kubectl} "$r/usr/bin/"
  printf '%s' "$KUBERNETES" >"$r/kind/version"
  mkdir -p "$r/kind/manifests"
  sed "s/KUBE_ROUTER/$KUBE_ROUTER/" "$root/docker/kind-node/default-cni.yaml" >"$r/kind/manifests/default-cni.yaml"
  sed "s/LOCAL_PATH_PROVISIONER/$LOCAL_PATH_PROVISIONER/" "$root/docker/kind-node/default-storage.yaml" \
    >"$r/kind/manifests/default-storage.yaml"
  tar -C "$r" -c . | docker import --change 'LABEL ckad.platform=kind-node-build' - "$tag-rootfs" >/dev/null
  rm -rf "$r"
}

# The images go into containerd's content store inside a build container, which is then
# committed with kind's entrypoint.
node_image() {
  docker run -d --privileged --name "$build" --label ckad.platform=kind-node-build \
    --entrypoint /bin/sleep "$tag-rootfs" infinity >/dev/null
  docker exec -d "$build" containerd
  local tries=0
  until docker exec "$build" ctr version >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 100 ] || { say "containerd did not start in the build container"; return 1; }
    sleep 0.2
  done
  docker exec -i "$build" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
    --all-platforms --no-unpack --digests - <"$out/images-r$KIND_NODE_REVISION.tar" >/dev/null
  local final stage loaded
  while read -r final stage; do
    printf 'ctr -n k8s.io images tag --force docker.io/%s %s\n' "$stage" "$final"
    printf 'ctr -n k8s.io images label %s io.cri-containerd.pinned=pinned\n' "$final"
    printf 'ctr -n k8s.io images rm docker.io/%s\n' "$stage"
  done < <(node_images) | docker exec -i "$build" sh -e >/dev/null
  # shellcheck disable=SC2046
  printf '%s\n' $(workload_names) | grep '^docker.io/' |
    docker exec -i "$build" bash -c "$(cat "$root/docker/kind-node/registry-from-content")"
  loaded=$(docker exec "$build" ctr --namespace=k8s.io images list -q)
  while read -r final stage; do
    grep -qx "$final" <<<"$loaded" || { say "$final is missing after the import"; return 1; }
  done < <(node_images)
  docker exec "$build" pkill containerd
  docker kill "$build" >/dev/null
  docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
    --change 'ENV container=docker' "$build" "$tag-committed" >/dev/null
  docker rm "$build" >/dev/null
  # `docker commit` of engine 20.10 cannot set a stop signal; a build without layers can.
  printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\nLABEL ckad.platform=kind-node ckad.kubernetes=%s\n' \
    "$tag-committed" "$KUBERNETES" | DOCKER_BUILDKIT=0 docker build --quiet --tag "$tag" - >/dev/null
  docker rmi "$tag-committed" "$tag-rootfs" >/dev/null
}

started=$SECONDS
stage "node userland (mmdebstrap)" userland_node
stage "kube-proxy userland (mmdebstrap)" userland_proxy
stage "busybox (Debian)" userland_busybox
stage "kube-router userland (mmdebstrap)" userland_firewall
stage "workloads userland (mmdebstrap)" userland_workloads
stage "registry (Debian)" userland_registry
stage "etcd $ETCD_IMAGE" etcd
stage "CoreDNS $COREDNS" coredns
stage "local-path-provisioner $LOCAL_PATH_PROVISIONER" local_path_provisioner
stage "kube-router $KUBE_ROUTER" kube_router
stage "Kubernetes binaries (build-lite.sh node)" kubernetes
stage "pause $PAUSE" pause
stage "component images" component_images
stage "node rootfs" node_rootfs
stage "node image (preload, commit)" node_image
say "built $tag in $((SECONDS - started)) s"
echo "$tag"
