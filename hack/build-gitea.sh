#!/usr/bin/env bash
# Builds Gitea (the real forge of the commit-status and rollback tests) into an
# output folder (default bin/gitea) from the Go module proxy, at the version
# pinned in hack/gitea/version.env. Gitea's go.mod carries replace directives,
# which apply only in its own module, so it is built inside a copy of its
# module source, not as a dependency. Its options/ (locales) and templates/
# go beside it into OUT-assets (Gitea's STATIC_ROOT_PATH: without the bindata
# tag, which needs the npm frontend build, Gitea reads them from disk).
# Skipped when the stamp matches.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/gitea}
# shellcheck source=/dev/null
source "$root/hack/gitea/version.env"
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
stamp="$out.stamp" want="gitea $GITEA_VERSION"
assets="$out-assets"
if [[ -x "$out" && -f "$stamp" && "$(cat "$stamp")" == "$want" && -d "$assets/options" ]]; then
  echo "skip  gitea $GITEA_VERSION (already built)"
  exit 0
fi
echo "build gitea $GITEA_VERSION (or its assets) ..."
start=$SECONDS
json=$(cd / && go mod download -json "code.gitea.io/gitea@$GITEA_VERSION")
dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")
sum=$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p' <<<"$json")
if [[ "$sum" != "$GITEA_SUM" ]]; then
  echo "gitea $GITEA_VERSION: module hash $sum, want $GITEA_SUM (hack/gitea/version.env)" >&2
  exit 1
fi
rm -rf "$assets.tmp" && mkdir -p "$assets.tmp"
cp -r "$dir/options" "$dir/templates" "$assets.tmp/"
chmod -R u+w "$assets.tmp"
rm -rf "$assets" && mv "$assets.tmp" "$assets"
if [[ -x "$out" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "gitea $GITEA_VERSION: assets copied (binary already built)"
  exit 0
fi
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
cp -r "$dir/." "$src"
chmod -R u+w "$src"
mkdir -p "$(dirname "$out")"
# sqlite (cgo) is the database of the tests; no bindata: the tests use the API only.
(cd "$src" && go build -tags 'sqlite sqlite_unlock_notify' -trimpath \
  -ldflags "-s -w -X main.Version=${GITEA_VERSION#v}" -o "$out.tmp" .)
mv "$out.tmp" "$out"
echo "$want" >"$stamp"
echo "built gitea $GITEA_VERSION in $((SECONDS - start))s"
