#!/usr/bin/env bash
# Builds the CNCF Distribution registry (the real OCI registry of the
# internal/helmrepo tests) into an output folder (default bin/registry) from
# hack/registry, a module of its own pinning
# github.com/distribution/distribution/v3. Skipped when the stamp matches the
# pinned version.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/registry}
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
version=$(sed -n 's/^require github.com\/distribution\/distribution\/v3 \(v[^ ]*\)$/\1/p' "$root/hack/registry/go.mod")
stamp="$out.stamp" want="registry $version"
if [[ -x "$out" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "skip  registry $version (already built)"
  exit 0
fi
echo "build registry $version ..."
start=$SECONDS
mkdir -p "$(dirname "$out")"
(cd "$root/hack/registry" && go build -trimpath -ldflags '-s -w' -o "$out.tmp" .)
mv "$out.tmp" "$out"
echo "$want" >"$stamp"
echo "built registry $version in $((SECONDS - start))s"
