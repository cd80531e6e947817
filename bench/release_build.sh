#!/usr/bin/env bash
# Release build time from a clean checkout: clones REV (default HEAD) into a fresh directory,
# fetches the crates first (not timed), then times `cargo build --release` with an empty target
# directory. Prints wall-clock and CPU (user + system) seconds; CPU time is the figure to compare
# on a shared machine, where wall-clock time depends on what else runs.
# Usage: bench/release_build.sh [REV]
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-HEAD}
dir=$(mktemp -d /tmp/closedloop-release-XXXXXX)
trap 'rm -rf "$dir"' EXIT
git clone -q . "$dir/src"
git -C "$dir/src" checkout -q "$rev"
cd "$dir/src"
commit=$(git rev-parse --short HEAD)
export CARGO_TARGET_DIR="$dir/target"
cargo fetch -q
/usr/bin/time -f '%e %U %S' -o "$dir/time" cargo build --release --offline -q
read -r wall user sys < "$dir/time"
cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')
echo "commit $commit: release build ${wall} s wall-clock, ${cpu} s CPU (${user} user, ${sys} system) on $(nproc) cores"
