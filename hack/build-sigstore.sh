#!/usr/bin/env bash
# Builds Sigstore's own servers and CLI, the real components of the artifact
# signing tests (internal/artifactsign, internal/sigstoretest), from the Go
# module proxy into an output folder (default bin/tools): cosign (the
# interoperability oracle), fulcio (the certificate authority, run with a
# keyless-generated config) and timestamp-server (the RFC 3161 timestamp
# authority). Each is skipped when its stamp matches the pinned version.
# Rekor is not built: it needs Trillian and MySQL, which do not run here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/tools}
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
mkdir -p "$out"
build() { # name package version
  local name=$1 pkg=$2 version=$3 stamp="$out/$1.stamp"
  if [[ -x "$out/$name" && -f "$stamp" && "$(cat "$stamp")" == "$pkg@$version" ]]; then
    echo "skip  $name $version (already built)"
    return
  fi
  echo "build $name $version ..."
  local start=$SECONDS
  GOBIN="$out" GOFLAGS=-buildvcs=false go install -trimpath -ldflags '-s -w' "$pkg@$version"
  echo "$pkg@$version" >"$stamp"
  echo "built $name $version in $((SECONDS - start))s"
}
build cosign github.com/sigstore/cosign/v3/cmd/cosign v3.1.3
build fulcio github.com/sigstore/fulcio v1.8.8
build timestamp-server github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server v2.2.1
