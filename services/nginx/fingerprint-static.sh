#!/bin/bash
# Adds a copy of each static file named with its content hash (site.css ->
# site.<12 hex of sha256>.css), the names the app's pages link to. nginx serves only
# names that exist, so a wrong or stale hash is a 404, never old content cached for a year.
set -o errexit -o pipefail -o nounset
root=${1:?usage: fingerprint-static.sh STATIC_DIR}
find "$root" -type f -name '*.*' -print0 | while IFS= read -r -d '' file; do
  digest=$(sha256sum "$file" | cut -c1-12)
  cp -p "$file" "${file%.*}.${digest}.${file##*.}"
done
