"""The production overlay starts, serves like the development stack, and is locked down."""

import re
import time

import pytest
import requests

from composed import composed_stack, effective_settings

PROD_FILES = ("compose.yaml", "compose.prod.yaml")


@pytest.fixture(scope="module")
def prod_stack():
    # GUNICORN_WORKERS empty whatever the caller set: the count must come from the CPU limit.
    env = {"WEB_REPLICAS": "2", "GUNICORN_WORKERS": ""}
    with composed_stack("prod", compose_files=PROD_FILES, env=env) as composed:
        yield composed


def all_containers(prod_stack):
    return prod_stack.running("web") + prod_stack.running("nginx")


def rendered_by(page):
    """The replica's hostname, as the demo page names it."""
    return re.search(r"replica <code>([0-9a-f]+)</code>", page.text)[1]


def test_prod_stack_passes_the_smoke_checks(prod_stack):
    assert prod_stack.get("/healthz").json() == {"status": "ok"}
    for replica in prod_stack.running("web"):
        assert effective_settings(replica)["worker_class"] == "gevent"
    assert "Rendered by Flask under gunicorn" in prod_stack.get("/").text
    static = prod_stack.get("/static/css/site.css", headers={"Accept-Encoding": "gzip"})
    assert static.status_code == 200 and static.headers["Content-Encoding"] == "gzip"
    assert prod_stack.get("/api/nope").json()["status"] == 404
    oversized = requests.post(prod_stack.url("/api/echo"), data=b"x" * (1024 * 1024 + 1), timeout=30)
    assert oversized.status_code == 413


@pytest.mark.parametrize("path", ["/api/whoami", "/api/sleep/10000", "/api/compute/1000000", "/api/faults/leak/1"])
def test_prod_answers_none_of_the_probes_but_healthz(prod_stack, path):
    started = time.monotonic()
    response = prod_stack.get(path)
    # The demo app's own JSON 404: the stack did not mount the probe, nothing slept.
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert time.monotonic() - started < 2
    assert prod_stack.post("/api/echo", data=b"x").status_code in (404, 405)


def test_prod_runs_the_replica_count_from_the_environment(prod_stack):
    assert len(prod_stack.running("web")) == 2
    seen = {rendered_by(prod_stack.get("/")) for _ in range(12)}
    assert seen == {c.id[:12] for c in prod_stack.running("web")}


def test_prod_root_filesystems_are_read_only(prod_stack):
    for container in all_containers(prod_stack):
        container.reload()
        assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True, container.name
        result = container.exec_run(["sh", "-c", "touch /etc/probe"])
        assert result.exit_code != 0 and b"Read-only file system" in result.output, container.name


def test_prod_drops_every_capability_and_privilege_escalation(prod_stack):
    for container in all_containers(prod_stack):
        host_config = container.attrs["HostConfig"]
        assert host_config["CapDrop"] == ["ALL"], container.name
        assert not host_config["CapAdd"], container.name
        assert "no-new-privileges:true" in host_config["SecurityOpt"], container.name
        # The kernel agrees: no effective capabilities, NoNewPrivs set, for PID 1.
        status = container.exec_run(["cat", "/proc/1/status"]).output.decode()
        assert "CapEff:\t0000000000000000" in status, container.name
        assert "NoNewPrivs:\t1" in status, container.name


def test_prod_has_limits_restart_policy_log_rotation_and_no_bind_mounts(prod_stack):
    for container in all_containers(prod_stack):
        host_config = container.attrs["HostConfig"]
        assert host_config["RestartPolicy"]["Name"] == "unless-stopped", container.name
        assert host_config["NanoCpus"] > 0 and host_config["Memory"] > 0, container.name
        assert host_config["LogConfig"]["Config"].get("max-size"), container.name
        assert not [m for m in container.attrs["Mounts"] if m["Type"] == "bind"], container.name


def test_prod_cpu_limit_sizes_the_gunicorn_workers(prod_stack):
    # WEB_CPUS=1.0 is a cgroup quota: the host has more CPUs, gunicorn must start one worker.
    for web in prod_stack.running("web"):
        assert effective_settings(web)["workers"] == "1"


def test_stopping_the_stack_exits_every_container_cleanly_within_its_grace_period(prod_stack):
    containers = all_containers(prod_stack)
    started = time.monotonic()
    prod_stack.compose("stop", timeout=120)
    elapsed = time.monotonic() - started
    for container in containers:
        container.reload()
        state = container.attrs["State"]
        # 137 would mean SIGKILL after the grace period; 0 is a graceful exit.
        assert state["ExitCode"] == 0, f"{container.name} exited {state['ExitCode']}"
    assert elapsed < 35, f"stopping took {elapsed:.1f}s, longer than stop_grace_period"
