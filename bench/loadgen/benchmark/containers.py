"""Starts and removes the containers under test on the benchmark's compose network, and waits on them."""

import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import docker

LABEL = "flask-stack.bench"
STARTUP_TIMEOUT_S = 60
# An idle server answers the trivial endpoint within this; wait this long for it to be idle.
QUICK_ANSWER_S = 0.05
SETTLE_TIMEOUT_S = 2


# Where the stack reads the database password (APP_DB_PASSWORD_FILE's default, and where
# Compose mounts the db_password secret): a path, not a password.
DB_PASSWORD_PATH = "/run/secrets/db_password"  # noqa: S105


@dataclass(frozen=True)
class DatabaseAccess:
    """How every server under test reaches the benchmark's database, as compose.db.yaml sets
    the stack's web service up: through PgBouncer, the password a read-only file."""

    host: str
    port: int
    # On the Docker host (bench/run.sh writes it in a scratch folder): mounted, never copied.
    password_file: str
    # Each worker process's psycopg pool (APP_DB_POOL_SIZE).
    pool_size: int

    def environment(self):
        return {
            "APP_DB_HOST": self.host,
            "APP_DB_PORT": str(self.port),
            "APP_DB_PASSWORD_FILE": DB_PASSWORD_PATH,
            "APP_DB_POOL_SIZE": str(self.pool_size),
        }

    def volumes(self):
        return {self.password_file: {"bind": DB_PASSWORD_PATH, "mode": "ro"}}


class Containers:
    """The server under test (network alias `web`) and the nginx in front of it (`nginx`).

    The tuning comparison runs several pairs at once, under aliases of their own."""

    def __init__(self, network, servers_image, nginx_image, outbound_url, database=None):
        self.client = docker.from_env()
        self.network = network
        self.servers_image = servers_image
        self.nginx_image = nginx_image
        self.outbound_url = outbound_url
        # None: the servers get no database (its endpoint then answers 404).
        self.database = database

    def remove_leftovers(self):
        for container in self.client.containers.list(all=True, filters={"label": LABEL}):
            container.remove(force=True, v=True)

    def start_server(self, server, alias="web", extra_aliases=()):
        # The probes are the endpoints measured; /api/outbound calls the slow upstream, and
        # /api/db/sleep the database, as the stack's own web service does with compose.db.yaml.
        env = {"APP_PROBES": "on", "APP_OUTBOUND_URL": self.outbound_url}
        volumes = {}
        if self.database is not None:
            env |= self.database.environment()
            volumes = self.database.volumes()
        env |= server.env
        command = list(server.command) if server.command else None
        return self._run(self.servers_image, alias, extra_aliases, command=command, environment=env, volumes=volumes)

    def start_nginx(self, server, alias="nginx", upstream="web"):
        # The stack's defaults, but no per-client limits: every request comes from one client here.
        env = {"NGINX_LIMITS": "off", "WEB_UPSTREAM": f"{upstream}:8000", **server.nginx_env}
        return self._run(self.nginx_image, alias, environment=env)

    def _run(self, image, alias, extra_aliases=(), **options):
        container = self.client.containers.create(
            image,
            name=f"flask-stack-bench-{alias}",
            labels={LABEL: "1"},
            detach=True,
            **options,
        )
        # Several containers may share an extra alias: Docker's DNS answers it with all of them.
        self.client.networks.get(self.network).connect(container, aliases=[alias, *extra_aliases])
        container.start()
        return container

    def stop(self, container):
        container.remove(force=True, v=True)


def wait_until_serving(url, container, timeout=STARTUP_TIMEOUT_S):
    """Poll url until it answers 200; fail with the container's log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        container.reload()
        if container.status == "exited":
            break
        time.sleep(0.25)
    logs = container.logs(tail=30).decode(errors="replace")
    raise RuntimeError(f"{container.name} did not serve {url} within {timeout}s:\n{logs}")


def effective_settings(container):
    """gunicorn's logged 'effective settings' line, or None for other servers."""
    for line in container.logs().decode(errors="replace").splitlines():
        if "effective settings:" in line:
            return line.split("effective settings:", 1)[1].strip()
    return None


def settles(url, within=SETTLE_TIMEOUT_S):
    """True once an idle request is answered quickly twice in a row: the server has
    finished the work the last clients left behind. False if that takes longer than `within`."""
    deadline = time.monotonic() + within
    quick_answers = 0
    while quick_answers < 2:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=left) as response:
                response.read()
        except (urllib.error.URLError, OSError):
            quick_answers = 0
            time.sleep(0.1)
            continue
        quick_answers = quick_answers + 1 if time.monotonic() - started < QUICK_ANSWER_S else 0
    return True
