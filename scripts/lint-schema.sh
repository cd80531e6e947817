#!/usr/bin/env bash
# Lints schema.graphql with graphql-schema-linter: a description on every type, field, argument,
# input field and enum value; the naming rules; and input types named `...Input` (our own rule,
# scripts/schema-linter/input_object_names_end_with_input.js). The linter and its graphql peer
# are pinned by scripts/schema-linter/package-lock.json and installed with `npm ci` into
# target/tmp/schema-linter, reused while the lock file is unchanged. Extra arguments go to the
# linter (e.g. `--format json`).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

src=scripts/schema-linter
dir=target/tmp/schema-linter
bin=$dir/node_modules/.bin/graphql-schema-linter
if [ ! -x "$bin" ] || ! cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
fi

rules=(
  types-have-descriptions
  fields-have-descriptions
  arguments-have-descriptions
  input-object-values-have-descriptions
  enum-values-have-descriptions
  types-are-capitalized
  fields-are-camel-cased
  input-object-values-are-camel-cased
  enum-values-all-caps
  defined-types-are-used
  deprecations-have-a-reason
  input-object-names-end-with-input
)
# The custom rule requires the linter's ValidationError from the pinned install.
NODE_PATH="$PWD/$dir/node_modules" "$bin" \
  --format compact \
  --rules "$(IFS=,; echo "${rules[*]}")" \
  --custom-rule-paths "$PWD/$src/input_object_names_end_with_input.js" \
  "$@" schema.graphql
echo "schema.graphql: graphql-schema-linter passed (${#rules[@]} rules)"
