"""The ECS task's topology, run locally: the task definition `make ecs-render` prints,
started as a compose project. nginx shares web's network namespace (`network_mode:
service:web`, as awsvpc gives the two containers of a Fargate task one namespace) and
reaches gunicorn on 127.0.0.1:8000. Each container has the environment, user, read-only
root, writable volumes (Fargate has no tmpfs), health check, dependency and stop timeout
of its container definition. The images are the ones compose builds; only the registry
digests are left out. The test client stands where the ALB would: the task trusts its
address range (the VpcCidr parameter) for X-Forwarded-For."""

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest
import requests
import yaml

from composed import ROOT, free_loopback_port, wait_for
from swarm_cluster import free_subnet

# Built by compose (`docker compose build`): the images the task runs, by their local names.
LOCAL_IMAGES = {"web": "flask-stack/web:latest", "nginx": "flask-stack/nginx:latest"}
EXAMPLE_DIGEST = "@sha256:" + "0" * 64


def render_task_definition(vpc_cidr, parameters="", migration=False):
    """`make ecs-render`'s output for a VPC of vpc_cidr and any other parameters (the digests
    are placeholders); with migration, `make ecs-render-migration`'s."""
    env = {
        "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin",
        "ECS_PARAMETERS": f"VpcCidr={vpc_cidr} {parameters}".strip(),
        "PUSHED_WEB_IMAGE": "registry.example/flask-stack/web" + EXAMPLE_DIGEST,
        "PUSHED_NGINX_IMAGE": "registry.example/flask-stack/nginx" + EXAMPLE_DIGEST,
    }
    rendered = subprocess.run(
        [sys.executable, "deploy/ecs/render.py", *(["--migration"] if migration else [])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(rendered.stdout)


# ECS's dependency conditions as compose's.
CONDITIONS = {
    "HEALTHY": "service_healthy",
    "START": "service_started",
    "COMPLETE": "service_completed",
    "SUCCESS": "service_completed_successfully",
}


def local_image(container):
    """The image compose built for a container's pushed one, by repository (web, nginx)."""
    return LOCAL_IMAGES[container["image"].rsplit("/", 1)[-1].partition("@")[0]]


def compose_service(container, volumes, prefix="", secret_values=None):
    """One container definition as a compose service, field by field. `secret_values` maps
    each secret's valueFrom to its value: a STAND-IN for what ECS reads from Secrets Manager
    or SSM and hands the container as an environment variable."""
    environment = {pair["name"]: pair["value"] for pair in container.get("environment", [])}
    for secret in container.get("secrets", []):
        environment[secret["name"]] = (secret_values or {})[secret["valueFrom"]]
    service = {
        "image": local_image(container),
        "user": container["user"],
        "read_only": container["readonlyRootFilesystem"],
        "environment": environment,
        # A named volume per task volume: empty at first, filled from the image's folder
        # with its owner, as Fargate's task storage volumes are.
        "volumes": [
            f"{prefix}{mount['sourceVolume']}:{mount['containerPath']}{':ro' if mount.get('readOnly') else ''}"
            for mount in container.get("mountPoints", [])
        ],
    }
    for key, field in (("entryPoint", "entrypoint"), ("command", "command")):
        if container.get(key):
            # ECS passes them as they are; compose would expand $NAME itself, from the host.
            service[field] = [part.replace("$", "$$") for part in container[key]]
    if container.get("stopTimeout"):
        service["stop_grace_period"] = f"{container['stopTimeout']}s"
    health = container.get("healthCheck")
    if health:
        service["healthcheck"] = {
            "test": health["command"],
            "interval": f"{health['interval']}s",
            "timeout": f"{health['timeout']}s",
            "retries": health["retries"],
            "start_period": f"{health['startPeriod']}s",
            # Compose polls faster while starting; ECS polls at `interval` throughout.
            "start_interval": "1s",
        }
    assert all(mount["sourceVolume"] in volumes for mount in container.get("mountPoints", []))
    assert "tmpfs" not in container.get("linuxParameters", {}), "Fargate has no tmpfs"
    if container.get("dependsOn"):
        service["depends_on"] = {
            prefix + dependency["containerName"]: {"condition": CONDITIONS[dependency["condition"]]}
            for dependency in container["dependsOn"]
        }
    return service


def task_services(task_definition, prefix="", published=None, secret_values=None):
    """(services, volumes) of one task: the first essential container owns the network
    namespace, on the network `task` (and publishes `published`, (host port, container
    port), where the load balancer would reach it); the other essential ones join its
    namespace. A one-shot container gets none: it only writes a file (on Fargate it is in
    the namespace, which it does not use), and it exits before the owner starts."""
    volumes = {volume["name"] for volume in task_definition["volumes"]}
    containers = task_definition["containerDefinitions"]
    owner = next(c["name"] for c in containers if c.get("essential", True))
    services = {}
    for container in containers:
        service = compose_service(container, volumes, prefix, secret_values)
        if container["name"] == owner:
            if published:
                service["ports"] = ["127.0.0.1:{}:{}".format(*published)]
            service["networks"] = ["task"]
        elif container.get("essential", True):
            service["network_mode"] = f"service:{prefix}{owner}"
        else:
            service["network_mode"] = "none"
        services[prefix + container["name"]] = service
    return services, {prefix + name: {} for name in sorted(volumes)}


def with_probes(services):
    """The one change to the task's environment: the checks below use the probes, which the
    task leaves at the image's default, off (only /healthz answers there)."""
    web = services["web"]["environment"]
    assert "APP_PROBES" not in web
    web["APP_PROBES"] = "on"


def compose_file_for(task_definition, published_port, subnet):
    """The task as a compose project; nginx's port published where the load balancer targets."""
    nginx = next(c for c in task_definition["containerDefinitions"] if c["name"] == "nginx")
    published = (published_port, nginx["portMappings"][0]["containerPort"])
    services, volumes = task_services(task_definition, published=published)
    with_probes(services)
    return {
        "services": services,
        "volumes": volumes,
        "networks": {"task": {"ipam": {"config": [{"subnet": subnet}]}}},
    }


class Task:
    """The rendered task, running as a compose project of its own."""

    def __init__(self, tmp_path):
        self.subnet = str(free_subnet(docker.from_env()))
        self.definition = render_task_definition(self.subnet)
        self.port = free_loopback_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.project = f"flaskstack-ecs-{secrets.token_hex(4)}"
        self.file = tmp_path / "compose.ecs-task.yaml"
        self.file.write_text(yaml.safe_dump(compose_file_for(self.definition, self.port, self.subnet)))
        self.docker = docker.from_env()

    def compose(self, *args, timeout=300):
        return subprocess.run(
            ["docker", "compose", "-p", self.project, "-f", str(self.file), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
        )

    def container(self, name):
        (found,) = self.docker.containers.list(
            all=True,
            filters={"label": [f"com.docker.compose.project={self.project}", f"com.docker.compose.service={name}"]},
        )
        return found

    def get(self, path, **kwargs):
        return requests.get(self.base_url + path, timeout=kwargs.pop("timeout", 10), **kwargs)


@pytest.fixture(scope="module")
def images():
    # The names LOCAL_IMAGES gives, whatever a developer's .env says.
    names = {"WEB_IMAGE": "flask-stack/web", "NGINX_IMAGE_NAME": "flask-stack/nginx", "IMAGE_TAG": "latest"}
    subprocess.run(
        ["docker", "compose", "-f", "compose.yaml", "build"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={**os.environ, **names},
        timeout=900,
    )


@pytest.fixture
def task(tmp_path, images):
    started = Task(tmp_path)
    try:
        started.compose("up", "--detach", "--wait", "--wait-timeout", "120", timeout=300)
        yield started
    finally:
        subprocess.run(
            [
                "docker",
                "compose",
                "-p",
                started.project,
                "-f",
                str(started.file),
                "down",
                "--volumes",
                "--timeout",
                "40",
            ],
            cwd=ROOT,
            capture_output=True,
            timeout=300,
        )


def test_the_task_runs_as_its_definition_says(task):
    for definition in task.definition["containerDefinitions"]:
        attrs = task.container(definition["name"]).attrs
        assert attrs["HostConfig"]["ReadonlyRootfs"] is True
        assert attrs["Config"]["User"] == definition["user"] and not definition["user"].startswith("0")
        assert not attrs["HostConfig"].get("Tmpfs")
        assert attrs["State"]["Health"]["Status"] == "healthy"
        # On Fargate a task volume is root's, mode 0755, unless the image declares its path
        # a VOLUME: only then can the non-root user write there.
        declared = task.docker.images.get(LOCAL_IMAGES[definition["name"]]).attrs["Config"]["Volumes"] or {}
        for mount in definition["mountPoints"]:
            assert mount["containerPath"] in declared, (definition["name"], mount["containerPath"], declared)
    nginx = task.container("nginx").attrs
    assert nginx["HostConfig"]["NetworkMode"] == f"container:{task.container('web').id}"
    assert nginx["Config"]["Env"].count("WEB_UPSTREAM=127.0.0.1:8000") == 1


def test_the_smoke_checks_pass_through_the_sidecar(task):
    health = task.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    whoami = task.get("/api/whoami", headers={"X-Request-ID": "ecs-sidecar-smoke-1"})
    assert whoami.status_code == 200
    assert whoami.headers["X-Request-ID"] == "ecs-sidecar-smoke-1"
    assert whoami.json()["request_id"] == "ecs-sidecar-smoke-1"
    assert whoami.headers["X-Content-Type-Options"] == "nosniff"
    assert task.get("/static/css/site.css").status_code == 200
    missing = task.get("/api/no-such-endpoint")
    assert missing.status_code == 404 and missing.headers["Content-Type"].startswith("application/json")


def test_behind_the_load_balancer_nginx_sees_the_client_and_limits_it_not_the_balancer(task):
    # The test client connects from the task network's gateway: inside VpcCidr, like an ALB.
    direct = task.get("/api/whoami").json()
    assert direct["client_ip"] == task.subnet.rsplit(".", 1)[0] + ".1", direct
    forwarded = task.get(
        "/api/whoami", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7", "X-Forwarded-Proto": "https"}
    )
    body = forwarded.json()
    # The rightmost address the balancer did not vouch for is the client; https is believed.
    assert body["client_ip"] == "203.0.113.7" and body["scheme"] == "https", body
    assert forwarded.headers["Strict-Transport-Security"].startswith("max-age=")

    def send_as(client):
        return task.get("/healthz", headers={"X-Forwarded-For": client}).status_code

    # One client over its rate limit gets 429s; another, through the same balancer, does not.
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(send_as, ["203.0.113.50"] * 600))
    assert statuses.count(429) > 0, "a client over its limit was never refused"
    assert send_as("203.0.113.51") == 200


def test_stopping_the_task_finishes_the_request_in_flight_and_exits_cleanly(task):
    outcome = {}

    def slow_request():
        try:
            outcome["response"] = task.get("/api/sleep/3000", timeout=30)
        except requests.RequestException as error:
            outcome["error"] = error

    request = threading.Thread(target=slow_request)
    request.start()
    time.sleep(1)
    # As ECS stops a task: the dependent container (nginx) first, then web, each given its
    # stopTimeout before SIGKILL. compose stops services in reverse dependency order too.
    started = time.monotonic()
    task.compose("stop", timeout=120)
    request.join(timeout=30)
    assert "error" not in outcome, outcome
    assert outcome["response"].status_code == 200
    for name in ("nginx", "web"):
        state = task.container(name).attrs["State"]
        assert state["ExitCode"] == 0, (name, state)
    longest_stop = max(c["stopTimeout"] for c in task.definition["containerDefinitions"])
    assert time.monotonic() - started < longest_stop, "a container waited for SIGKILL"


def test_gunicorn_answers_only_inside_the_task(task):
    # The task's address, as the load balancer (or anything else in the VPC) reaches it.
    networks = task.container("web").attrs["NetworkSettings"]["Networks"]
    (address,) = [network["IPAddress"] for network in networks.values()]
    assert requests.get(f"http://{address}:8080/healthz", timeout=10).status_code == 200
    # gunicorn listens on the loopback only (GUNICORN_HOST): from outside the namespace its
    # port is closed, whatever a security group would allow.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, 8000), timeout=5).close()
    # Inside, the image's own health check still reaches it.
    check = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
    assert task.container("web").exec_run(["python", "-c", check]).exit_code == 0


# The password's parameter, as the deployment names it; its value is the test's own.
PASSWORD_PARAMETER = "arn:aws:ssm:eu-west-1:123456789012:parameter/flask-stack-test/db-password"  # noqa: S105 an ARN


@pytest.fixture(scope="module")
def db_image(images):
    names = {"POSTGRES_IMAGE_NAME": "flask-stack/db", "IMAGE_TAG": "latest"}
    subprocess.run(
        ["docker", "compose", "-f", "compose.yaml", "-f", "compose.db.yaml", "build", "db"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={**os.environ, **names},
        timeout=900,
    )
    return "flask-stack/db:latest"


@pytest.fixture
def database_task(tmp_path, db_image):
    """One compose project holding a Postgres (what the DatabaseHost parameter points at),
    the migration task (`migration-` services) and the service's task, both rendered with
    the database's parameters; nothing started yet."""
    started = Task(tmp_path)
    password = secrets.token_urlsafe(18)
    password_file = tmp_path / "db_password"
    password_file.write_text(password)
    password_file.chmod(0o644)
    parameters = f"DatabaseHost=db DatabasePasswordSecretArn={PASSWORD_PARAMETER}"
    started.definition = render_task_definition(started.subnet, parameters)
    migration = render_task_definition(started.subnet, parameters, migration=True)
    # STAND-IN for ECS's secret injection: the value it would read from SSM.
    values = {PASSWORD_PARAMETER: password}
    nginx = next(c for c in started.definition["containerDefinitions"] if c["name"] == "nginx")
    published = (started.port, nginx["portMappings"][0]["containerPort"])
    services, volumes = task_services(started.definition, published=published, secret_values=values)
    with_probes(services)
    migration_services, migration_volumes = task_services(migration, prefix="migration-", secret_values=values)
    db = {
        "image": db_image,
        "environment": {"POSTGRES_USER": "app", "POSTGRES_DB": "app", "POSTGRES_PASSWORD_FILE": "/run/secrets/pw"},
        "volumes": [f"{password_file}:/run/secrets/pw:ro"],
        "networks": ["task"],
        "healthcheck": {
            "test": ["CMD-SHELL", "pg_isready --quiet --host=127.0.0.1 --username=app --dbname=app"],
            "interval": "10s",
            "start_period": "60s",
            "start_interval": "1s",
        },
    }
    started.file.write_text(
        yaml.safe_dump(
            {
                "services": {"db": db, **migration_services, **services},
                "volumes": {**migration_volumes, **volumes},
                "networks": {"task": {"ipam": {"config": [{"subnet": started.subnet}]}}},
            }
        )
    )
    started.password = password
    try:
        started.compose("up", "--detach", "--wait", "db", timeout=300)
        yield started
    finally:
        subprocess.run(
            ["docker", "compose", "-p", started.project, "-f", str(started.file), "down", "--volumes", "-t", "40"],
            cwd=ROOT,
            capture_output=True,
            timeout=300,
        )


def test_with_a_database_the_migration_task_then_the_service_reach_it_with_a_password_in_no_environment(
    database_task,
):
    task = database_task
    # The migration task first: its one-shot writer, then alembic, to completion.
    task.compose("up", "--detach", "migration-migrate", timeout=300)
    wait_for(
        lambda: task.container("migration-migrate").attrs["State"]["Status"] == "exited",
        deadline_s=120,
        message="the migration ending",
    )
    migrated = task.container("migration-migrate")
    assert migrated.attrs["State"]["ExitCode"] == 0, migrated.logs().decode()
    assert "Running upgrade" in migrated.logs().decode()
    assert task.container("migration-db-password").attrs["State"]["ExitCode"] == 0

    # Then the service's task: the writer, then web once it has succeeded, then nginx.
    task.compose("up", "--detach", "--wait", "--wait-timeout", "120", "web", "nginx", timeout=300)
    assert task.container("db-password").attrs["State"]["ExitCode"] == 0
    written = requests.post(
        task.base_url + "/api/db/writes", data=b"ecs", headers={"X-Request-ID": "ecs-db-1"}, timeout=10
    )
    assert written.status_code == 201, written.text
    assert task.get("/api/db/writes/ecs-db-1").status_code == 200

    web = task.container("web")
    # The password is a file only web's user may read, on a mount web cannot write...
    stat = web.exec_run(["stat", "-c", "%a %u", "/run/secrets/db_password"]).output.decode().split()
    assert stat == ["600", "10001"], stat
    assert web.exec_run(["sh", "-c", "echo x > /run/secrets/other"]).exit_code != 0
    # ...and in no long-running process's environment: not the container's, not gunicorn's.
    assert not any(task.password in entry for entry in web.attrs["Config"]["Env"])
    (gunicorn,) = web.exec_run(["cat", "/proc/1/task/1/children"]).output.split()
    for pid in ("1", gunicorn.decode()):
        read = web.exec_run(["cat", f"/proc/{pid}/environ"])
        assert read.exit_code == 0 and b"PATH=" in read.output, (pid, read.output)
        assert task.password.encode() not in read.output, pid


def test_nginx_refuses_to_start_with_a_malformed_trusted_range(images):
    client = docker.from_env()
    container = client.containers.run(
        LOCAL_IMAGES["nginx"], detach=True, environment={"NGINX_REAL_IP_FROM": "10.0.0.0/16;evil"}
    )
    try:
        wait_for(lambda: client.containers.get(container.id).status == "exited", 20, message="nginx exiting")
        assert client.containers.get(container.id).attrs["State"]["ExitCode"] != 0
        assert "NGINX_REAL_IP_FROM holds '10.0.0.0/16;evil'" in container.logs().decode()
    finally:
        container.remove(force=True)
