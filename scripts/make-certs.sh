#!/usr/bin/env bash
# A local certificate authority and a certificate from it for nginx's HTTPS, for development
# and tests only (production mounts real ones: docs/operations.md, "TLS").
#   scripts/make-certs.sh [dir] [names...]     (make certs; defaults: certs, localhost)
# Writes <dir>/ca/ca.crt (trust it in your browser or client) and ca.key, kept and reused
# on later runs, and <dir>/site/tls.crt and tls.key, issued anew on every run: the directory
# compose.tls.yaml mounts into nginx. Running it again, then `make nginx-reload`, is a renewal.
set -o errexit -o pipefail -o nounset

dir=${1:-certs}
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(localhost)

command -v openssl >/dev/null || { echo "make-certs: openssl is needed (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir/ca" "$dir/site"
chmod 0700 "$dir/ca"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -s "$dir/ca/ca.key" ] || [ ! -s "$dir/ca/ca.crt" ]; then
  # P-256 keys: every TLS client supports them, and they sign faster than RSA.
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca/ca.key")
  # pathlen:0: this CA signs server certificates only, never another CA.
  openssl req -x509 -new -key "$dir/ca/ca.key" -sha256 -days 3650 \
    -subj "/CN=flask-stack local development CA $(date -u +%Y-%m-%d)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$dir/ca/ca.crt" 2>/dev/null
  echo "make-certs: new local CA in $dir/ca/ca.crt"
fi

san=$(printf 'DNS:%s,' "${names[@]}")
san=${san%,}
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/tls.key"
openssl req -new -key "$work/tls.key" -subj "/CN=${names[0]}" -out "$work/tls.csr"
# 397 days: the longest validity browsers accept for a server certificate.
openssl x509 -req -in "$work/tls.csr" -CA "$dir/ca/ca.crt" -CAkey "$dir/ca/ca.key" \
  -set_serial "0x$(openssl rand -hex 16)" -days 397 -sha256 \
  -extfile <(printf '%s\n' \
    "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=$san" \
    "subjectKeyIdentifier=hash" \
    "authorityKeyIdentifier=keyid") \
  -out "$work/tls.crt" 2>/dev/null
# nginx's master runs as uid 101, not as you, and reads the key at start and at each
# reload: a development key is readable by all. A production key is not (docs/operations.md).
chmod 0644 "$work/tls.key" "$work/tls.crt"
# Each file is replaced by a rename, so nginx reading it at a reload never sees half of one.
mv -f "$work/tls.key" "$dir/site/tls.key"
mv -f "$work/tls.crt" "$dir/site/tls.crt"
echo "make-certs: $dir/site/tls.crt for ${names[*]}, serial $(openssl x509 -in "$dir/site/tls.crt" -noout -serial | cut -d= -f2)"
