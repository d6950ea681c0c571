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


def render_task_definition(vpc_cidr):
    """`make ecs-render`'s output for a VPC of vpc_cidr (the digests are placeholders)."""
    env = {
        "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin",
        "ECS_PARAMETERS": f"VpcCidr={vpc_cidr}",
        "PUSHED_WEB_IMAGE": "registry.example/flask-stack/web" + EXAMPLE_DIGEST,
        "PUSHED_NGINX_IMAGE": "registry.example/flask-stack/nginx" + EXAMPLE_DIGEST,
    }
    rendered = subprocess.run(
        [sys.executable, "deploy/ecs/render.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(rendered.stdout)


def compose_service(container, volumes):
    """One container definition as a compose service, field by field."""
    health = container["healthCheck"]
    service = {
        "image": LOCAL_IMAGES[container["name"]],
        "user": container["user"],
        "read_only": container["readonlyRootFilesystem"],
        "environment": {pair["name"]: pair["value"] for pair in container.get("environment", [])},
        "healthcheck": {
            "test": health["command"],
            "interval": f"{health['interval']}s",
            "timeout": f"{health['timeout']}s",
            "retries": health["retries"],
            "start_period": f"{health['startPeriod']}s",
            # Compose polls faster while starting; ECS polls at `interval` throughout.
            "start_interval": "1s",
        },
        "stop_grace_period": f"{container['stopTimeout']}s",
        # A named volume per task volume: empty at first, filled from the image's folder
        # with its owner, as Fargate's task storage volumes are.
        "volumes": [f"{mount['sourceVolume']}:{mount['containerPath']}" for mount in container["mountPoints"]],
    }
    assert all(mount["sourceVolume"] in volumes for mount in container["mountPoints"])
    assert "tmpfs" not in container.get("linuxParameters", {}), "Fargate has no tmpfs"
    if container.get("dependsOn"):
        conditions = {
            "HEALTHY": "service_healthy",
            "START": "service_started",
            "COMPLETE": "service_completed_successfully",
        }
        service["depends_on"] = {
            dependency["containerName"]: {"condition": conditions[dependency["condition"]]}
            for dependency in container["dependsOn"]
        }
    return service


def compose_file_for(task_definition, published_port, subnet):
    """The task as a compose project: the first container owns the network namespace and
    publishes the port the load balancer targets; the others join its namespace."""
    volumes = {volume["name"] for volume in task_definition["volumes"]}
    containers = task_definition["containerDefinitions"]
    owner = containers[0]["name"]
    nginx = next(c for c in containers if c["name"] == "nginx")
    target_port = nginx["portMappings"][0]["containerPort"]
    services = {}
    for container in containers:
        service = compose_service(container, volumes)
        if container["name"] == "web":
            # The one change to the task's environment: the checks below use the probes,
            # which the task leaves at the image's default, off (only /healthz answers there).
            assert "APP_PROBES" not in service["environment"]
            service["environment"]["APP_PROBES"] = "on"
        if container["name"] == owner:
            service["ports"] = [f"127.0.0.1:{published_port}:{target_port}"]
            service["networks"] = ["task"]
        else:
            service["network_mode"] = f"service:{owner}"
        services[container["name"]] = service
    return {
        "services": services,
        "volumes": {name: {} for name in sorted(volumes)},
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
