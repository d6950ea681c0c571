# Stand-in for the official nginx/nginx-prometheus-exporter image, for machines without a
# registry, built from Debian's prometheus-nginx-exporter package. Same contract as the
# official image: /usr/bin/nginx-prometheus-exporter as the entrypoint (Debian names the
# program prometheus-nginx-exporter), user nobody, port 9113.
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}
# Unpinned on purpose: they must match the rootfs, from whichever forky snapshot the mirror has.
# hadolint ignore=DL3008
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-nginx-exporter \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/sbin/policy-rc.d \
 && ln -s /usr/bin/prometheus-nginx-exporter /usr/bin/nginx-prometheus-exporter
USER 65534:65534
EXPOSE 9113
ENTRYPOINT ["/usr/bin/nginx-prometheus-exporter"]
