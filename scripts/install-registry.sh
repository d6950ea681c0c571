#!/usr/bin/env bash
# The registry server the push tests run on 127.0.0.1: Debian's docker-registry (the CNCF
# distribution server), htpasswd (apache2-utils) for its password file, and openssl for the
# Swarm test's registry certificate. Root, Debian.
set -o errexit -o pipefail -o nounset

if command -v docker-registry >/dev/null && command -v htpasswd >/dev/null && command -v openssl >/dev/null; then
  echo "registry: docker-registry, htpasswd and openssl present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends docker-registry apache2-utils openssl >/dev/null
# The package may start a registry of its own on port 5000; the tests start theirs.
if command -v service >/dev/null; then service docker-registry stop >/dev/null 2>&1 || true; fi
echo "registry: installed $(docker-registry --version 2>/dev/null || echo docker-registry)"
