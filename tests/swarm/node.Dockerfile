# A Swarm node for the multi-node test: a Docker engine in a privileged container, from
# Debian's packages (docker.io; the CLI is its own package in forky). The test runs three
# of these as one manager and two workers, and one more as the registry they pull from
# (docker-registry, the CNCF distribution server). Not a base image users pull: the
# official docker:dind plays this part on machines that can reach Docker Hub.
ARG BASE_IMAGE=stand-in/debian-minbase:forky
FROM ${BASE_IMAGE}
# Unpinned on purpose: they must match the rootfs, from whichever forky snapshot the mirror has.
# hadolint ignore=DL3008
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      docker.io docker-cli iptables iproute2 ca-certificates docker-registry \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
# The engine's images and containers, on a volume: overlay2 cannot stack on the
# container's own overlay root.
VOLUME ["/var/lib/docker"]
CMD ["dockerd", "--host=unix:///var/run/docker.sock"]
