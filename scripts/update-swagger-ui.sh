#!/usr/bin/env bash
# Vendor the Swagger UI assets served at <base>/api from the npm package swagger-ui-dist.
#
#   scripts/update-swagger-ui.sh [VERSION]     (default: the version vendored now)
#
# Keeps only what /api loads (bundle, stylesheet, favicon) plus the licence texts, strips
# the sourceMappingURL trailers (the .map files are not shipped) and records the version.
# Needs npm (for `npm pack`, which checks the tarball's integrity) and tar.
set -euo pipefail

VERSION="${1:-5.35.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/src/modelaas/web/static/swagger-ui"
ASSETS=(swagger-ui-bundle.js swagger-ui.css favicon-32x32.png)
LICENCES=(LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt)

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
tar -xzf "$WORK"/swagger-ui-dist-*.tgz -C "$WORK"
PKG="$WORK/package"
ACTUAL="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$PKG/package.json")"
if [[ "$ACTUAL" != "$VERSION" ]]; then
  echo "npm gave swagger-ui-dist $ACTUAL, not $VERSION" >&2
  exit 1
fi

rm -rf "$DEST"
mkdir -p "$DEST"
for name in "${ASSETS[@]}" "${LICENCES[@]}"; do
  cp "$PKG/$name" "$DEST/$name"
done
for name in swagger-ui-bundle.js swagger-ui.css; do
  sed -i.orig -e '/^\/[/*]# sourceMappingURL=/d' "$DEST/$name"
  rm -f "$DEST/$name.orig"
done
if grep -q 'sourceMappingURL=' "$DEST/swagger-ui-bundle.js" "$DEST/swagger-ui.css"; then
  echo "a sourceMappingURL trailer is left in $DEST" >&2
  exit 1
fi
printf '%s\n' "$VERSION" >"$DEST/VERSION"
echo "Vendored swagger-ui-dist $VERSION into ${DEST#"$ROOT"/}"
