#!/usr/bin/env bash
# Command-line tools the integration tests run as a user would: jq, for the filter
# docs/operations.md gives to follow one request through nginx's and gunicorn's logs
# (tests/test_request_id.py). Root, Debian.
set -o errexit -o pipefail -o nounset

if command -v jq >/dev/null; then
  echo "test tools: jq present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends jq >/dev/null
echo "test tools: installed $(jq --version)"
