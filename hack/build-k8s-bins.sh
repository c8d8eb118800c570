#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok) into an output folder (default bin/k8s) from the
# build modules under hack/. Versions come from internal/version/versions.env.
# A binary whose stamp (bin/k8s/.stamps/NAME) matches its pinned version is skipped,
# so a second run is a no-op.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/k8s}
# shellcheck source=/dev/null
source "$root/internal/version/versions.env"
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
mkdir -p "$out/.stamps"

k8s_minor=${KUBERNETES_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}
k8s_ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$k8s_minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION \
 -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=$k8s_minor"

built=0
# build NAME VERSION MODULE_DIR PACKAGE [LDFLAGS]
build() {
  local name=$1 version=$2 dir=$3 pkg=$4 ldflags=${5:--s -w}
  local stamp="$out/.stamps/$name" want="$name $version"
  if [[ -x "$out/$name" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "skip  $name $version (already built)"
    return
  fi
  echo "build $name $version ..."
  local start=$SECONDS
  (cd "$root/hack/$dir" && go build -trimpath -ldflags "$ldflags" -o "$out/$name.tmp" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
  echo "$want" >"$stamp"
  echo "built $name $version in $((SECONDS - start))s"
  built=$((built + 1))
}

total=$SECONDS
build etcd "$ETCD_VERSION" etcd .
build kube-scheduler "$KUBERNETES_VERSION" k8s k8s.io/kubernetes/cmd/kube-scheduler "$k8s_ldflags"
build kube-controller-manager "$KUBERNETES_VERSION" k8s k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"
build kube-apiserver "$KUBERNETES_VERSION" k8s k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build kubectl "$KUBERNETES_VERSION" k8s k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
build kwok "$KWOK_VERSION" kwok sigs.k8s.io/kwok/cmd/kwok
if ((built > 0)); then
  echo "k8s-bins: built $built binaries into $out in $((SECONDS - total))s"
else
  echo "k8s-bins: all binaries up to date in $out"
fi
