#!/usr/bin/env bash
# Writes a CycloneDX SBOM of one image in the local engine: its Debian packages and the
# Python packages of its venv, with versions, from cdxgen (scripts/install-sbom-tools.sh).
# make push runs it on each image it pushed, by digest.
#
#   scripts/sbom.sh IMAGE NAME OUTPUT     e.g. registry/flask-stack/web@sha256:… flask-stack/web web.cdx.json
#
# The SBOM names the image's config digest (metadata.properties oci:image:Id) and CPU
# (oci:image:Architecture), so it can be matched to the image it describes.
set -o errexit -o pipefail -o nounset

image=${1:?usage: sbom.sh IMAGE NAME OUTPUT}
name=${2:?usage: sbom.sh IMAGE NAME OUTPUT}
output=${3:?usage: sbom.sh IMAGE NAME OUTPUT}
cdxgen=$(cd "$(dirname "$0")/.." && pwd)/tools/sbom/node_modules/.bin/cdxgen

fail() {
  echo "sbom: $*" >&2
  exit 1
}
[ -x "$cdxgen" ] || fail "cdxgen is not installed: run scripts/install-sbom-tools.sh (or push with SBOM=off)"

# cdxgen unpacks the image's layers into its temporary folder and leaves them there.
scratch=$(mktemp -d /tmp/sbom.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# FETCH_LICENSE=false: no lookups on the network, the SBOM is what the image holds.
# The component types keep packages and the image itself; cdxgen would list every file too.
if ! CDXGEN_TEMP_DIR=$scratch TMPDIR=$scratch FETCH_LICENSE=false "$cdxgen" -t docker "$image" \
  --project-name "$name" --project-version "${image##*@}" \
  --component-type library --component-type framework --component-type application \
  --component-type operating-system --component-type container \
  -o "$scratch/sbom.cdx.json" >"$scratch/cdxgen.log" 2>&1; then
  tail -n 20 "$scratch/cdxgen.log" >&2
  fail "cdxgen could not describe $image"
fi
# An SBOM without the image's identity or packages describes nothing: refuse it.
python3 - "$scratch/sbom.cdx.json" <<'CHECK' || fail "cdxgen's SBOM of $image is incomplete (see above)"
import json
import sys

bom = json.load(open(sys.argv[1]))
properties = {p["name"]: p["value"] for p in bom.get("metadata", {}).get("properties", [])}
packages = [c for c in bom.get("components", []) if c.get("purl", "").startswith(("pkg:deb/", "pkg:pypi/"))]
missing = [key for key in ("oci:image:Id", "oci:image:Architecture") if key not in properties]
if bom.get("bomFormat") != "CycloneDX" or missing or not packages:
    sys.exit(f"sbom: format {bom.get('bomFormat')}, missing {missing}, {len(packages)} packages")
CHECK
mkdir -p "$(dirname "$output")"
mv "$scratch/sbom.cdx.json" "$output"
