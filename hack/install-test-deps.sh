#!/usr/bin/env bash
# Installs the system packages the tests need and this machine lacks (Debian
# or Ubuntu, through apt-get; as root, or with sudo when it is there). Each
# is a real component a test drives:
#   gcc, libc6-dev      Gitea is built with cgo (SQLite)
#   prometheus          the metrics test scrapes the controller; promtool checks the alert rules
#   openssh-server      Git over SSH against a real sshd
#   chromium, fonts     keyless ui in a real headless browser (chromedp)
# Nothing is installed when everything is present. Called by `make test`.
set -euo pipefail

missing=()
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || missing+=(prometheus)
[ -x "${KEYLESS_SSHD:-/usr/sbin/sshd}" ] || missing+=(openssh-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-dejavu-core)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing what the tests need: ${missing[*]}"
sudo=""
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run make test as root" >&2
    exit 1
  fi
  sudo=sudo
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing ${missing[*]}: this script installs through apt-get (Debian/Ubuntu); install them with your package manager" >&2
  exit 1
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
