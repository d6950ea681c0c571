# Stand-in for the official postgres:18.*-trixie image, for machines without a registry,
# built from Debian's postgresql-18. Reproduces the parts of its contract the stack relies
# on: user postgres (uid/gid 999, so a volume moves between this and the real image), the
# server and client binaries on PATH, PGDATA=/var/lib/postgresql/18/docker under
# VOLUME /var/lib/postgresql, LANG en_US.utf8, a postgresql.conf listening on every address,
# docker-entrypoint.sh (POSTGRES_USER, POSTGRES_PASSWORD[_FILE], POSTGRES_DB,
# POSTGRES_INITDB_ARGS, /docker-entrypoint-initdb.d), STOPSIGNAL SIGINT (fast shutdown).
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}
# The user first, with the official image's ids, so the packages below take it as it is.
# postgresql-common is told to create no cluster of its own: the entrypoint makes PGDATA's.
# Unpinned on purpose: they must match the rootfs, from whichever forky snapshot the mirror has.
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash \
      postgres \
 && install --directory --owner postgres --group postgres --mode 1777 /var/lib/postgresql \
 && printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql-common locales \
 && sed -ri 's/^#?\s*create_main_cluster\b.*/create_main_cluster = false/' \
      /etc/postgresql-common/createcluster.conf \
 && grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql-18 util-linux xz-utils zstd ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/sbin/policy-rc.d \
 && localedef --inputfile en_US --charmap UTF-8 en_US.UTF-8 \
 && sed -ri "s/^#?listen_addresses\s*=\s*\S+/listen_addresses = '*'/" \
      /usr/share/postgresql/18/postgresql.conf.sample \
 && grep -q "^listen_addresses = '\*'" /usr/share/postgresql/18/postgresql.conf.sample \
 && install --directory --owner postgres --group postgres --mode 3777 /var/run/postgresql \
 && mkdir /docker-entrypoint-initdb.d \
 && cp /etc/ssl/host-ca-bundle.crt /etc/ssl/certs/ca-certificates.crt
ENV LANG=en_US.utf8 \
    PG_MAJOR=18 \
    PATH=$PATH:/usr/lib/postgresql/18/bin \
    PGDATA=/var/lib/postgresql/18/docker
VOLUME /var/lib/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
