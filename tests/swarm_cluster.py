"""A multi-node Docker Swarm on this one machine, for the Swarm tests: three Docker engines
in privileged containers (Docker-in-Docker nodes built from Debian's docker.io), one
manager and two workers, and a registry they pull from, all on a bridge network the test
creates. The registry speaks TLS with a certificate from a CA made for the test, which the
host's engine and every node trust through /etc/docker/certs.d (Docker's documented
place for a registry's CA), so the host pushes and the nodes pull under one name."""

import contextlib
import ipaddress
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import docker

from composed import ROOT
from registry import forget_local_images, require_tool

NODE_IMAGE = "flask-stack/swarm-node:test"
NODE_DOCKERFILE = ROOT / "tests" / "swarm" / "node.Dockerfile"
REGISTRY_PORT = 5000
CERTS_D = Path("/etc/docker/certs.d")


def build_node_image():
    base = "stand-in/debian-minbase:forky"
    if subprocess.run(["docker", "image", "inspect", base], capture_output=True).returncode != 0:
        raise AssertionError(f"{base} is missing: run scripts/docker-host/build-base-images.sh (it makes it)")
    subprocess.run(
        [
            "docker",
            "build",
            "--quiet",
            "--tag",
            NODE_IMAGE,
            "--file",
            str(NODE_DOCKERFILE),
            str(NODE_DOCKERFILE.parent),
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )


def free_subnet(client):
    taken = [
        ipaddress.ip_network(config["Subnet"])
        for network in client.networks.list()
        for config in ((network.attrs.get("IPAM") or {}).get("Config") or [])
        if config.get("Subnet")
    ]
    while True:
        candidate = ipaddress.ip_network(f"10.{100 + secrets.randbelow(150)}.{secrets.randbelow(256)}.0/24")
        if not any(candidate.overlaps(network) for network in taken):
            return candidate


def make_certificates(folder, registry_ip):
    """A CA, and a certificate for the registry's address signed by it."""
    openssl = require_tool("openssl", "run scripts/install-registry.sh (as root)")
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args):
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True, timeout=60)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=swarm test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        f"/CN={registry_ip}",
        "-keyout",
        "registry.key",
        "-out",
        "registry.csr",
    )
    (folder / "san.cnf").write_text(f"subjectAltName=IP:{registry_ip}\n")
    run(
        "x509",
        "-req",
        "-in",
        "registry.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
        "-out",
        "registry.crt",
    )


class SwarmCluster:
    def __init__(self, folder, workers=2):
        self.client = docker.from_env()
        self.name = f"flaskstack-swarm-{secrets.token_hex(3)}"
        self.folder = folder
        self.subnet = free_subnet(self.client)
        hosts = list(self.subnet.hosts())
        self.registry_ip = str(hosts[1])
        self.node_ips = [str(hosts[10 + index]) for index in range(1 + workers)]
        self.registry = f"{self.registry_ip}:{REGISTRY_PORT}"
        self.user, self.password = "deployer", secrets.token_urlsafe(16)
        self.containers = []
        self.network = None

    # --- nodes ---------------------------------------------------------------------------

    def node_name(self, index):
        return f"{self.name}-node{index + 1}"

    def node(self, index):
        return self.client.containers.get(self.node_name(index))

    def node_docker(self, index, *args, timeout=120, check=True):
        """`docker ARGS` run by node index's own CLI, against its own engine."""
        result = subprocess.run(
            ["docker", "exec", self.node_name(index), "docker", *args], capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"node{index + 1}: docker {' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    @property
    def manager_host(self):
        """DOCKER_HOST for the manager's engine, reachable on the test's bridge only."""
        return f"tcp://{self.node_ips[0]}:2375"

    def start(self):
        require_tool("htpasswd", "run scripts/install-registry.sh (as root)")
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(self.subnet))])
        self.network = self.client.networks.create(
            self.name, driver="bridge", ipam=ipam, labels={"flask-stack-test": self.name}
        )
        certificates = self.folder / "certs"
        make_certificates(certificates, self.registry_ip)
        self._trust_on_host(certificates / "ca.crt")
        self._start_registry(certificates)
        for index, ip in enumerate(self.node_ips):
            self._start_node(index, ip, certificates / "ca.crt")
        for index in range(len(self.node_ips)):
            self._wait_for_engine(index)
        self.node_docker(0, "swarm", "init", "--advertise-addr", self.node_ips[0])
        token = self.node_docker(0, "swarm", "join-token", "--quiet", "worker").stdout.strip()
        for index in range(1, len(self.node_ips)):
            self.node_docker(index, "swarm", "join", "--token", token, f"{self.node_ips[0]}:2377")
        return self

    def _trust_on_host(self, ca):
        folder = CERTS_D / self.registry
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(ca, folder / "ca.crt")

    def _start_registry(self, certificates):
        htpasswd = certificates / "htpasswd"
        subprocess.run(
            ["htpasswd", "-B", "-b", "-c", str(htpasswd), self.user, self.password], check=True, capture_output=True
        )
        (certificates / "registry.yml").write_text(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n"
            f"http:\n  addr: 0.0.0.0:{REGISTRY_PORT}\n  tls:\n    certificate: /certs/registry.crt\n"
            "    key: /certs/registry.key\n"
            "auth:\n  htpasswd:\n    realm: swarm-test\n    path: /certs/htpasswd\n"
        )
        container = self.client.containers.create(
            NODE_IMAGE,
            ["docker-registry", "serve", "/certs/registry.yml"],
            name=f"{self.name}-registry",
            detach=True,
            volumes={str(certificates): {"bind": "/certs", "mode": "ro"}},
            labels={"flask-stack-test": self.name},
            network=self.network.name,
        )
        self.containers.append(container)
        self._reconnect_with_ip(container, self.registry_ip)
        container.start()

    def _start_node(self, index, ip, ca):
        container = self.client.containers.create(
            NODE_IMAGE,
            ["dockerd", "--host=unix:///var/run/docker.sock", f"--host=tcp://{ip}:2375"],
            name=self.node_name(index),
            hostname=f"node{index + 1}",
            detach=True,
            privileged=True,
            # A mount, not a volume string: the registry's name (host:port) holds a colon.
            mounts=[
                docker.types.Mount(f"/etc/docker/certs.d/{self.registry}/ca.crt", str(ca), type="bind", read_only=True)
            ],
            labels={"flask-stack-test": self.name},
            network=self.network.name,
        )
        self.containers.append(container)
        self._reconnect_with_ip(container, ip)
        container.start()

    def _reconnect_with_ip(self, container, ip):
        self.network.disconnect(container)
        self.network.connect(container, ipv4_address=ip)

    def _wait_for_engine(self, index, deadline_s=90):
        deadline = time.monotonic() + deadline_s
        while self.node_docker(index, "info", check=False, timeout=30).returncode != 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"node{index + 1}'s engine did not start: {self.node(index).logs()[-2000:]}")
            time.sleep(1)

    # --- teardown ------------------------------------------------------------------------

    def remove(self):
        """Undo everything start() did, each step whatever became of the others."""
        shutil.rmtree(CERTS_D / self.registry, ignore_errors=True)
        for container in self.containers:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True, v=True)
        if self.network is not None:
            with contextlib.suppress(docker.errors.APIError):
                self.network.remove()
        # The images the host pushed to this registry: their names die with it.
        with contextlib.suppress(docker.errors.APIError):
            forget_local_images(self.registry)


@contextlib.contextmanager
def swarm_cluster(folder, workers=2):
    build_node_image()
    cluster = SwarmCluster(folder, workers)
    try:
        yield cluster.start()
    finally:
        cluster.remove()
