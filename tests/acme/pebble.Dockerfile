# A labelled stand-in for Let's Encrypt's test ACME server, for machines without a registry, built from
# Debian's pebble package, which also ships pebble-challtestsrv (the mock DNS Pebble asks).
# Test-only: Pebble drops its state and makes a new root at every start. No config is baked
# in: the test bind-mounts /pebble (config.json, cert.pem, key.pem), made by tests/pebble.py.
# On web's base image (the test passes services/web/Dockerfile's PYTHON_IMAGE): Debian with apt.
ARG PYTHON_IMAGE
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.description="Local stand-in for Let's Encrypt's test ACME server (Pebble and pebble-challtestsrv), built from Debian's pebble package. For tests only."
# Unpinned on purpose: the version is whichever the base image's Debian release has.
# No ca-certificates: neither binary makes an outbound TLS connection, so the base image's
# bundle (the host's) is left as it is.
# hadolint ignore=DL3008
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pebble \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && pebble -version
# Every port is above 1024 and the mounted files are world-readable: nothing needs root.
USER 65534:65534
WORKDIR /tmp
# 14000: ACME directory; 15000: Pebble's management API (both HTTPS).
# 8053: challtestsrv's mock DNS; 8055: its management API (plain HTTP).
EXPOSE 14000 15000 8053/udp 8053/tcp 8055
CMD ["pebble", "-config", "/pebble/config.json"]
