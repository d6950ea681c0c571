"""gunicorn in the web container: effective settings logged once, workers sized to usable CPUs."""

import time
import uuid

import pytest

from composed import effective_settings, wait_for

pytestmark = pytest.mark.worker_count


def usable_cpus(container):
    result = container.exec_run(["python", "-c", "import os; print(len(os.sched_getaffinity(0)))"])
    return int(result.output)


def test_effective_settings_are_logged_once_at_start(stack):
    web = stack.running("web")[0]
    settings = effective_settings(web)
    assert settings["worker_class"] == "gevent"
    assert settings["bind"] == "0.0.0.0:8000"
    assert settings["keepalive"] == "75"
    assert settings["worker_tmp_dir"] == "/dev/shm"
    assert settings["preload_app"] == "False"


def started_as_compose_starts_it(stack, **limits):
    """The stack's web image with GUNICORN_WORKERS empty, as compose.yaml passes it unless
    told otherwise, under the given limits: the caller's own GUNICORN_WORKERS cannot reach
    it. The container is returned running; the caller removes it."""
    image = stack.running("web")[0].image
    container = stack.docker.containers.run(
        image.id,
        detach=True,
        environment={"GUNICORN_WORKERS": ""},
        name=f"flaskstack-derive-workers-{uuid.uuid4().hex[:8]}",
        **limits,
    )
    try:
        wait_for(lambda: b"effective settings:" in container.logs(), deadline_s=60, message="gunicorn started")
    except BaseException:
        container.remove(force=True, v=True)
        raise
    return container


@pytest.mark.parametrize("limits", [{}, {"cpuset_cpus": "0"}], ids=["every-cpu", "one-cpu-by-affinity"])
def test_workers_match_the_cpus_the_container_may_use(stack, limits):
    container = started_as_compose_starts_it(stack, **limits)
    try:
        workers = int(effective_settings(container)["workers"])
        cpus = usable_cpus(container)
    finally:
        container.remove(force=True, v=True)
    assert workers == cpus
    if limits:
        assert workers == 1


def test_the_first_process_is_drain_then_stop_with_gunicorn_as_its_child(stack):
    """PID 1 gets the container's SIGTERM and drains before passing it on, and reaps the
    orphans the app leaves (stack/drain_then_stop.py; test_drop_in_app.py counts zombies)."""
    web = stack.running("web")[0]
    first = web.exec_run(["cat", "/proc/1/cmdline"]).output.split(b"\0")
    assert first[:3] == [b"python", b"-m", b"stack.drain_then_stop"], first
    assert b"gunicorn" in first[3:], first
    children = web.exec_run(["cat", "/proc/1/task/1/children"]).output.split()
    assert len(children) == 1, children
    child = web.exec_run(["cat", f"/proc/{children[0].decode()}/cmdline"]).output.split(b"\0")
    assert any(b"gunicorn" in part for part in child[:2]) and b"stack.wsgi:application" in child, child


def test_the_workers_keep_gunicorns_process_name(stack):
    """ps, top and pkill know a worker by its name, the master's: the metrics' sampler does not
    rename it (Python 3.14 names an OS thread after each thread started on it, and under
    gevent a patched thread runs on the worker's own: stack/metrics.py). This stack has no
    database; psycopg_pool's threads do rename a worker that opens the pool (docs/database.md)."""
    web = stack.running("web")[0]

    def read(path):
        return web.exec_run(["cat", path]).output

    (master,) = read("/proc/1/task/1/children").split()
    master = master.decode()
    children = read(f"/proc/{master}/task/{master}/children").decode().split()
    # The master's children: its workers, and the metrics exporter (a process of its own).
    workers = [pid for pid in children if b"stack.wsgi:application" in read(f"/proc/{pid}/cmdline")]
    assert workers, children
    stack.get("/healthz")
    names = [read(f"/proc/{pid}/comm").strip() for pid in workers]
    assert names == [read(f"/proc/{master}/comm").strip()] * len(workers) == [b"gunicorn"] * len(workers), names


def test_gunicorn_dying_mid_drain_ends_the_container_at_once_not_after_the_drain(stack):
    """The drain is a deadline, not a sleep: with nothing left to serve, the container ends."""
    image = stack.running("web")[0].image
    container = stack.docker.containers.run(
        image.id,
        detach=True,
        environment={"GUNICORN_DRAIN_SECONDS": "30", "GUNICORN_WORKERS": "1"},
        name=f"flaskstack-dies-draining-{uuid.uuid4().hex[:8]}",
    )
    try:
        wait_for(lambda: b"effective settings:" in container.logs(), deadline_s=60, message="gunicorn started")
        container.kill(signal="SIGTERM")
        wait_for(lambda: b"draining for 30s" in container.logs(), deadline_s=10, message="the drain began")
        (master,) = container.exec_run(["cat", "/proc/1/task/1/children"]).output.split()
        killed = time.monotonic()
        kill = f"import os, signal; os.kill({int(master)}, signal.SIGKILL)"
        assert container.exec_run(["python", "-c", kill]).exit_code == 0
        status = container.wait(timeout=30)
        ended_after = time.monotonic() - killed
        logs = container.logs().decode()
    finally:
        container.remove(force=True, v=True)
    assert status["StatusCode"] == 128 + 9, "the container ends with gunicorn's status"
    # Generous against a noisy machine; the drain had about 30 s left.
    assert ended_after < 5, f"the container outlived gunicorn by {ended_after:.1f}s"
    assert "exited with status -9 during the drain" in logs
