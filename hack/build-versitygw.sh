#!/usr/bin/env bash
# Builds the Versity S3 Gateway (versitygw, Apache-2.0), the real S3 object
# store of the ledger sink tests, into an output folder (default
# bin/versitygw) from the Go module proxy at the pinned version (the go
# command checks the module against the checksum database). Skipped when
# the stamp matches.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/versitygw}
version=v1.8.0
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
stamp="$out.stamp" want="versitygw $version"
if [[ -x "$out" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "skip  versitygw $version (already built)"
  exit 0
fi
echo "build versitygw $version ..."
start=$SECONDS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$(dirname "$out")"
(cd "$tmp" && GOBIN="$tmp/bin" go install -trimpath -ldflags '-s -w' "github.com/versity/versitygw/cmd/versitygw@$version")
mv "$tmp/bin/versitygw" "$out"
echo "$want" >"$stamp"
echo "built versitygw $version in $((SECONDS - start))s"
