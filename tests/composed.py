"""A composed stack under test: its own compose project, a free loopback port, teardown."""

import json
import os
import re
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import docker
import requests

ROOT = Path(__file__).resolve().parents[1]


def free_loopback_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    """One `docker compose` project started from this repository's compose files."""

    def __init__(self, name_hint, compose_files=("compose.yaml",), env=None, root=ROOT):
        self.root = Path(root)
        self.project = f"flaskstack-{name_hint}-{uuid.uuid4().hex[:8]}"
        self.port = free_loopback_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.compose_files = compose_files
        # gunicorn's access log on (it is off by default), so the tests can show what web
        # saw and did not see, whatever a .env says.
        self.env = {
            **os.environ,
            "HTTP_BIND": "127.0.0.1",
            "HTTP_PORT": str(self.port),
            "GUNICORN_ACCESS_LOG": "on",
            **(env or {}),
        }
        self.docker = docker.from_env()

    def compose(self, *args, timeout=300, check=True, input=None):
        files = [arg for path in self.compose_files for arg in ("-f", str(self.root / path))]
        command = ["docker", "compose", "-p", self.project, *files, *args]
        result = subprocess.run(
            command, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout, input=input
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def up(self, *extra):
        """Start the stack; `up --wait` must not return before it serves (no polling here)."""
        self.compose("up", "--build", "--detach", "--wait", "--wait-timeout", "180", *extra, timeout=600)
        # /healthz: the one endpoint of the stack's that answers with the probes off too.
        first = self.get("/healthz", timeout=10)
        assert first.status_code == 200, f"stack not serving right after `up --wait`: {first.status_code} {first.text}"
        # A worker count set by the caller (make test-worker-counts) or by the test must be
        # the one running, or a run meant to show a laptop's view would prove nothing.
        pinned = self.env.get("GUNICORN_WORKERS", "").strip()
        if pinned:
            for replica in self.running("web"):
                assert effective_settings(replica)["workers"] == pinned, (pinned, effective_settings(replica))

    def down(self):
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "40", check=False, timeout=300)

    def make(self, *arguments, env=None, timeout=600):
        """Run a Makefile target against this project, as a user would (`make scale N=3`)."""
        files = " ".join(str(self.root / path) for path in self.compose_files)
        return subprocess.run(
            ["make", *arguments, f"COMPOSE=docker compose -p {self.project}", f"COMPOSE_FILES={files}"],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def replicas_answering(self, expected, deadline_s=20):
        """Wait until nginx spreads requests over exactly the `expected` running replicas."""
        running = {c.id[:12] for c in self.running("web")}
        assert len(running) == expected, running
        seen = set()

        def all_seen():
            for _ in range(3 * expected):
                answer = self.get("/api/whoami")
                # A 429 here means an earlier test left the rate-limit bucket empty: say so.
                assert answer.status_code == 200, f"/api/whoami answered {answer.status_code}: {answer.text[:200]}"
                seen.add(answer.json()["hostname"])
            return seen >= running

        wait_for(all_seen, deadline_s=deadline_s, interval_s=0.1, message=f"{expected} replicas answering")
        return running

    def containers(self, service):
        return self.docker.containers.list(
            all=True,
            filters={"label": [f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}"]},
        )

    def running(self, service):
        return [c for c in self.containers(service) if c.status == "running"]

    def logs(self, service):
        return "".join(c.logs().decode("utf-8", "replace") for c in self.containers(service))

    def flushed_logs(self, service):
        """A service's log with every request so far in it (see wait_for_access_log_flush)."""
        wait_for_access_log_flush()
        return self.logs(service)

    def nginx_access_log(self, since=None, request_id_prefix=""):
        """nginx's JSON access log lines since `since` (whole seconds, as the Docker API takes
        them), parsed, once every line is written; only those whose request id starts with
        `request_id_prefix` when one is given (a LoadLoop's own requests)."""
        wait_for_access_log_flush()
        text = "".join(
            c.logs(stdout=True, stderr=False, since=since).decode("utf-8", "replace") for c in self.containers("nginx")
        )
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        return [line for line in lines if line["request_id"].startswith(request_id_prefix)]

    def address_of(self, container):
        """The container's address on the stack's network, as nginx's upstream field shows it."""
        container.reload()
        (network,) = container.attrs["NetworkSettings"]["Networks"].values()
        return network["IPAddress"]

    def run_to_exit(self, image, environment, timeout_s=30):
        """(exit status, stderr) of a container of `image` run on its own until it exits, then
        removed: how an image's start-up checks answer a setting."""
        container = self.docker.containers.run(
            image.id, detach=True, environment=environment, name=f"{self.project}-one-off-{uuid.uuid4().hex[:8]}"
        )
        try:
            result = container.wait(timeout=timeout_s)
            return result["StatusCode"], container.logs(stdout=False, stderr=True).decode()
        finally:
            container.remove(force=True, v=True)

    def url(self, path):
        return self.base_url + path

    def get(self, path, **kwargs):
        return requests.get(self.url(path), timeout=kwargs.pop("timeout", 10), **kwargs)

    def post(self, path, **kwargs):
        return requests.post(self.url(path), timeout=kwargs.pop("timeout", 10), **kwargs)


@contextmanager
def composed_stack(name_hint, compose_files=("compose.yaml",), env=None, root=ROOT):
    """A started Stack that is always torn down, even when starting it fails."""
    composed = Stack(name_hint, compose_files=compose_files, env=env, root=root)
    try:
        composed.up()
        yield composed
    finally:
        composed.down()


def log_entries(text):
    """The JSON lines of a log (web's lines are all JSON, GUNICORN_LOG_FORMAT=json), parsed."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def effective_settings(container):
    """gunicorn's 'effective settings' line, logged once at start, as a dict of strings."""
    messages = [entry["message"] for entry in log_entries(container.logs().decode())]
    lines = [message for message in messages if message.startswith("effective settings:")]
    assert len(lines) == 1, f"expected the effective settings logged exactly once, got {lines}"
    return dict(re.findall(r"(\w+)=(\S+)", lines[0].split("effective settings:", 1)[1]))


# nginx writes its access log in batches: a line waits at most this long (flush=1s), with
# a margin for the timer. gunicorn's (GUNICORN_ACCESS_LOG=on) writes each line at once.
ACCESS_LOG_FLUSH_S = 1.25


def wait_for_access_log_flush():
    """Each nginx worker writes the lines it holds within the flush interval."""
    time.sleep(ACCESS_LOG_FLUSH_S + 0.5)


def wait_for(condition, deadline_s, interval_s=0.2, message="condition"):
    """Poll `condition` until it returns something truthy; fail with `message` after the deadline."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"{message} not met within {deadline_s}s")


def compose_config(*files, profiles=(), env=None):
    """What `docker compose config` resolves from `files` with `profiles` on, as JSON: no .env
    beside them and no COMPOSE_PROFILES from the caller's environment, so it shows what the
    files say; `env` adds variables (the pushed images' names, say)."""
    args = [arg for name in files for arg in ("-f", name)] + [arg for name in profiles for arg in ("--profile", name)]
    environ = {key: value for key, value in os.environ.items() if key != "COMPOSE_PROFILES"}
    output = subprocess.run(
        ["docker", "compose", "--env-file", os.devnull, *args, "config", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**environ, **(env or {})},
    ).stdout
    return json.loads(output)


def compose_config_services(*files, profiles=()):
    """The names of the services those files define with those profiles on."""
    return set(compose_config(*files, profiles=profiles)["services"])
