#!/usr/bin/env bash
# Fetches the pinned GraphiQL release and React's production builds from the npm registry into
# assets/graphiql/, with a gzip copy of each (served to browsers that accept it) and their
# licences. The binary embeds these files (src/http/graphiql.rs): GraphiQL loads nothing from
# the network. Run it to move to another release, then check the page (tests/api/browser.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

GRAPHIQL=4.1.2   # the last release with a self-contained UMD build (v5 is ES modules and Monaco)
REACT=18.3.1     # the last React with UMD builds

out=assets/graphiql
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null)
for pkg in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
  mkdir -p "$work/$pkg" && tar xzf "$work/$pkg.tgz" -C "$work/$pkg"
done

rm -rf "$out" && mkdir -p "$out"
cp "$work/graphiql-$GRAPHIQL/package/graphiql.min.js" "$work/graphiql-$GRAPHIQL/package/graphiql.min.css" "$out/"
cp "$work/react-$REACT/package/umd/react.production.min.js" "$out/"
cp "$work/react-dom-$REACT/package/umd/react-dom.production.min.js" "$out/"
for f in "$out"/*; do gzip -9 -n -k "$f"; done

{
  echo "# Third-party files served with GraphiQL"
  echo
  echo "graphiql $GRAPHIQL, react $REACT and react-dom $REACT from the npm registry, unchanged"
  echo "(scripts/vendor-graphiql.sh); the .gz files are gzip -9 -n of them. SHA-256:"
  echo
  (cd "$out" && sha256sum -- *.js *.css | sed 's/^/    /')
  for pkg in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
    echo
    echo "## ${pkg%-*} (${pkg##*-})"
    echo
    sed 's/^/    /' "$work/$pkg/package/LICENSE"
  done
} > "$out/LICENSES.md"
ls -l "$out"
