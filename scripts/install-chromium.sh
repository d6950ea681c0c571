#!/usr/bin/env bash
# Installs Debian's Chromium for the browser test of the front page (tests/test_browser.py).
set -o errexit -o pipefail -o nounset
command -v chromium >/dev/null && exit 0
[ "$(id -u)" -eq 0 ] || { echo "install-chromium: run as root, or: apt-get install chromium" >&2; exit 1; }
echo "install-chromium: installing Debian's chromium (about 15 s)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
  || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
