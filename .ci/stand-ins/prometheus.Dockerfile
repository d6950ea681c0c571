# Stand-in for the official prom/prometheus image, for machines without a registry, built
# from Debian's prometheus package (promtool comes with it). Reproduces the parts of the
# official image's contract the stack relies on: /bin/prometheus as the entrypoint,
# /bin/promtool, /etc/prometheus, data in /prometheus, user nobody, port 9090.
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}
# Unpinned on purpose: they must match the rootfs, from whichever forky snapshot the mirror has.
# hadolint ignore=DL3008
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/sbin/policy-rc.d \
 && mkdir -p /prometheus /etc/prometheus \
 && chown nobody:nogroup /prometheus \
 && cp /etc/ssl/host-ca-bundle.crt /etc/ssl/certs/ca-certificates.crt
USER 65534:65534
WORKDIR /prometheus
VOLUME ["/prometheus"]
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
