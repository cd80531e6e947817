#!/usr/bin/env bash
# Installs what the tests that drive npm clients (tests/api/browser.rs) need: the pinned npm
# packages of tests/browser/package.json into DIR, and with `chromium`, Debian's Chromium when the
# machine has none. Exits with 3 and the reason where this machine cannot have them (no node or
# npm, or Chromium missing where apt-get cannot install it): the tests then skip; with another
# non-zero code when an install failed, which fails them.
set -euo pipefail
dir=${1:?usage: setup.sh DIR [chromium]}
here=$(cd "$(dirname "$0")" && pwd)

for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool is not installed" >&2; exit 3; }
done
mkdir -p "$dir"
if ! cmp -s "$here/package-lock.json" "$dir/package-lock.json" || [ ! -d "$dir/node_modules" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
cp "$here"/*.mjs "$here"/*.html "$dir/"

if [ "${2:-}" = chromium ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium is not installed, and apt-get cannot install it here (not root, or no apt-get)" >&2
    exit 3
  fi
  # Another test process may be installing it at the same time: apt's lock makes them wait.
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null
fi
