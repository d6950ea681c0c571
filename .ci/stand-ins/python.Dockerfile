# Stand-in for the official python:*-slim image, for machines without a registry.
# Reproduces what our Dockerfiles rely on: python/pip on PATH, venv, useradd, and trust
# in the host's CA bundle (restored after apt, which regenerates the bundle).
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}
# Unpinned on purpose: they must match the rootfs, from whichever forky snapshot the mirror has.
# hadolint ignore=DL3008
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3 python3-pip python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \
 && ln -sf /usr/bin/python3 /usr/local/bin/python \
 && ln -sf /usr/bin/pip3 /usr/local/bin/pip \
 && cp /etc/ssl/host-ca-bundle.crt /etc/ssl/certs/ca-certificates.crt
ENV LANG=C.UTF-8 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
