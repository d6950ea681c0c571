# Stand-in for the official nginx:*-trixie image, for machines without a registry.
# Reproduces the parts of its contract our nginx image relies on: user nginx (uid 101),
# /etc/nginx/conf.d, /usr/share/nginx/html, /var/cache/nginx, logs on stdout/stderr,
# /docker-entrypoint.sh rendering /etc/nginx/templates/*.template, SIGQUIT to stop.
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}
# Unpinned on purpose: they must match the rootfs, from whichever forky snapshot the mirror has.
# hadolint ignore=DL3008
RUN groupadd --system --gid 101 nginx \
 && useradd --system --uid 101 --gid nginx --no-create-home --home-dir /nonexistent \
      --shell /bin/false nginx \
 && printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      nginx gettext-base ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/sbin/policy-rc.d \
 && rm -rf /etc/nginx/sites-enabled /etc/nginx/sites-available /var/www \
 && mkdir -p /etc/nginx/conf.d /etc/nginx/templates /usr/share/nginx/html /var/cache/nginx \
      /docker-entrypoint.d \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log \
 && cp /etc/ssl/host-ca-bundle.crt /etc/ssl/certs/ca-certificates.crt
COPY nginx.conf /etc/nginx/nginx.conf
COPY default.conf /etc/nginx/conf.d/default.conf
COPY nginx-entrypoint.sh /docker-entrypoint.sh
ENTRYPOINT ["/docker-entrypoint.sh"]
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
