#!/usr/bin/env bash
# Re-vendor the analyst page's third-party files from web/package-lock.json (exact versions and
# integrity hashes): `npm ci` into web/node_modules, then copy each built file with its licence
# into graphfraud/service/static/vendor/ and record its version and sha256 in VERSIONS.
# The page loads only these copies (CSP 'self'); nothing is fetched from a CDN at run time.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../graphfraud/service/static/vendor"
command -v npm >/dev/null || { echo "needs node + npm (apt-get install nodejs npm)" >&2; exit 1; }
(cd "$here" && npm ci --ignore-scripts --no-audit --no-fund --silent)
mkdir -p "$out"
pkg="$here/node_modules/cytoscape"
cp "$pkg/dist/cytoscape.min.js" "$out/cytoscape.min.js"
cp "$pkg/LICENSE" "$out/cytoscape.LICENSE"
version="$(node -p "require('$pkg/package.json').version")"
sum="$(sha256sum "$out/cytoscape.min.js" | cut -d' ' -f1)"
printf 'cytoscape %s dist/cytoscape.min.js sha256:%s (MIT, see cytoscape.LICENSE)\n' "$version" "$sum" > "$out/VERSIONS"
cat "$out/VERSIONS"
