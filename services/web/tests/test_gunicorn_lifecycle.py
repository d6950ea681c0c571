"""The web container's command in a real gunicorn: SIGTERM drains first (drain_then_stop.py),
fat workers are recycled, gevent's connections take turns, the access log is a knob."""

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

WEB_DIR = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(port, method, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, body=b"x" if method == "POST" else None)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until_serving(port, deadline_s=20):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            return request(port, "GET", "/healthz")
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"gunicorn did not serve on port {port} within {deadline_s}s")


@pytest.fixture
def gunicorn(tmp_path):
    """Start gunicorn as the image does (under drain_then_stop, from gunicorn.conf.py) with
    extra environment, in `cwd` (this service's folder, or a copy of it), in a session of
    its own: afterwards its whole process group (the first process, gunicorn's master, its
    workers and the metrics exporter) is killed, whatever the test did."""
    started = []

    def start(cwd=WEB_DIR, **env):
        port = free_port()
        log = tmp_path / f"gunicorn-{port}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "stack.drain_then_stop",
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--config",
                    "gunicorn.conf.py",
                    "stack.wsgi:application",
                ],
                cwd=cwd,
                env={
                    **os.environ,
                    "GUNICORN_PORT": str(port),
                    "GUNICORN_WORKER_CLASS": "sync",
                    "GUNICORN_WORKERS": "1",
                    "GUNICORN_WORKER_TMP_DIR": str(tmp_path),
                    "APP_TRUSTED_PROXY_HOPS": "0",
                    "APP_PROBES": "on",
                    **env,
                },
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        wait_until_serving(port)
        return process, port, log

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def test_sigterm_drains_before_the_listener_closes(gunicorn):
    process, port, log = gunicorn(GUNICORN_DRAIN_SECONDS="2")
    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)

    status, body = request(port, "GET", "/api/whoami")
    assert status == 503 and b'"draining"' in body
    status, body = request(port, "POST", "/api/echo")
    assert status == 200, "a draining replica must still serve what nginx would never resend"

    assert process.wait(15) == 0
    assert "draining for 2s before the graceful stop" in log.read_text()
    with pytest.raises(ConnectionRefusedError):
        request(port, "GET", "/healthz")


def test_a_worker_over_the_memory_ceiling_is_replaced_and_no_request_fails(gunicorn):
    # Any worker holds more than 1 MiB: each one is recycled after its first request.
    _, port, log = gunicorn(GUNICORN_MAX_WORKER_MEMORY_MB="1")
    pids = set()
    for _ in range(4):
        status, body = request(port, "GET", "/api/whoami")
        assert status == 200
        pids.add(body.split(b'"pid":')[1].split(b",")[0])
    assert len(pids) == 4, "every request should have been served by a fresh worker"
    assert log.read_text().count("over the 1 MiB ceiling") >= 4


def test_a_head_gunicorn_refuses_gets_gunicorns_own_400_and_never_reaches_the_app(gunicorn):
    """A control character in a header value: nginx passes it on (tests/test_hostile_paths.py),
    and gunicorn refuses it with its own page. The stack no longer rewrites that page as JSON,
    which took replacing gunicorn's function (docs/configuration.md, "What gunicorn answers")."""
    _, port, log = gunicorn(GUNICORN_ACCESS_LOG="on")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /api/whoami?probe=refused HTTP/1.1\r\nHost: x\r\nX-Note: a\x01b\r\n\r\n")
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    head, _, _ = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert request(port, "GET", "/healthz")[0] == 200
    assert "probe=refused" not in log.read_text()


def test_a_gevent_worker_serves_a_new_connection_between_another_ones_queued_requests(gunicorn):
    """One connection with many requests queued must not hold a gevent worker until it is done."""
    _, port, _ = gunicorn(GUNICORN_WORKER_CLASS="gevent")
    queued = 60
    # Each costs the worker's CPU for a few milliseconds: the queue lasts a fraction of a second.
    pipelined = b"GET /api/compute/20000 HTTP/1.1\r\nHost: x\r\n\r\n" * queued
    answered = []

    def read_all(conn):
        received = b""
        while received.count(b"HTTP/1.1 200 ") < queued:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
            answered.append(received.count(b"HTTP/1.1 200 "))

    with socket.create_connection(("127.0.0.1", port), timeout=10) as busy:
        busy.sendall(pipelined)
        reader = threading.Thread(target=read_all, args=(busy,))
        reader.start()
        deadline = time.monotonic() + 5
        while not answered and time.monotonic() < deadline:
            time.sleep(0.001)
        assert answered, "the queued requests were never answered"
        status, _ = request(port, "GET", "/healthz")
        done_when_answered = answered[-1]
        reader.join(10)
    assert status == 200
    assert answered[-1] == queued, "every queued request must be answered too"
    # Without turns the new connection waits for the whole queue (60 of 60 done first).
    assert done_when_answered < queued // 2, f"{done_when_answered} of {queued} queued requests went first"


def logged(log, marker, within_s):
    deadline = time.monotonic() + within_s
    while marker not in log.read_text():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_gunicorn_writes_no_access_log_by_default(gunicorn):
    _, port, log = gunicorn()
    assert request(port, "GET", "/api/whoami?probe=unlogged")[0] == 200
    assert logged(log, "Booting worker", within_s=1)
    time.sleep(0.5)
    assert "probe=unlogged" not in log.read_text()


@pytest.mark.parametrize("worker_class", ["sync", "gthread", "gevent"])
def test_the_access_log_switched_on_writes_each_line_at_once_with_the_request_id(gunicorn, worker_class):
    _, port, log = gunicorn(GUNICORN_WORKER_CLASS=worker_class, GUNICORN_ACCESS_LOG="on")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/api/whoami?probe=logged", headers={"X-Request-ID": "logged-request-0001"})
    assert connection.getresponse().status == 200
    connection.close()
    assert logged(log, "GET /api/whoami?probe=logged HTTP/1.1 200", within_s=1)
    (entry,) = [entry for entry in json_lines(log) if "probe=logged" in entry["message"]]
    assert entry["logger"] == "gunicorn.access"
    assert entry["request"] == "GET /api/whoami?probe=logged HTTP/1.1"
    assert entry["status"] == 200 and entry["bytes"] > 0 and 0 < entry["request_time"] < 1
    assert entry["request_id"] == "logged-request-0001"
    assert entry["remote_addr"] == "127.0.0.1"


def json_lines(log):
    """Every line of the log as a JSON object; a line that is not one fails the test."""
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_every_line_is_json_and_a_line_logged_while_serving_carries_the_request_id(gunicorn):
    _, port, log = gunicorn(APP_FAULT_INJECTION="on")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("POST", "/api/faults/side-effect/0", headers={"X-Request-ID": "json-log-0001"})
    assert connection.getresponse().status == 200
    connection.close()
    assert logged(log, "side effect executed", within_s=1)
    entries = json_lines(log)
    assert all({"time", "level", "logger", "pid", "message"} <= set(entry) for entry in entries), entries
    (effect,) = [entry for entry in entries if entry["message"].startswith("side effect executed")]
    assert effect["request_id"] == "json-log-0001"
    # Lines logged outside a request carry none, rather than a stale one.
    (booted,) = [entry for entry in entries if entry["message"].startswith("Booting worker")]
    assert "request_id" not in booted


def test_the_text_log_format_is_gunicorns_own(gunicorn):
    _, port, log = gunicorn(GUNICORN_LOG_FORMAT="text", GUNICORN_ACCESS_LOG="on")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/api/whoami?probe=text", headers={"X-Request-ID": "text-log-0001"})
    assert connection.getresponse().status == 200
    connection.close()
    assert logged(log, '"GET /api/whoami?probe=text HTTP/1.1" 200', within_s=1)
    (line,) = [line for line in log.read_text().splitlines() if "probe=text" in line]
    assert line.endswith("request_id=text-log-0001")
    assert "[INFO] Booting worker" in log.read_text()


def test_workers_recycle_after_their_share_and_every_request_is_answered(gunicorn):
    # gunicorn's own max_requests: two workers serving alike reach their share together here
    # (no jitter), and every request is still answered while they are replaced.
    _, port, log = gunicorn(GUNICORN_WORKERS="2", GUNICORN_MAX_REQUESTS="25", GUNICORN_MAX_REQUESTS_JITTER="0")
    statuses = []

    def client():
        for _ in range(100):
            statuses.append(request(port, "GET", "/healthz")[0])

    clients = [threading.Thread(target=client) for _ in range(8)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(60)
    assert statuses == [200] * 800
    text = log.read_text()
    # gunicorn's own line, and the stack's saying how many it served (at least its share).
    recycles = text.count("Autorestarting worker after current request.")
    served = [int(count) for count in re.findall(r"served (\d+) requests \(GUNICORN_MAX_REQUESTS\)", text)]
    # (A replacement takes many of the requests that follow: fewer recycles than 800 / 25.)
    assert recycles >= 3, text
    assert len(served) == recycles and all(count >= 25 for count in served), served
    deadline = time.monotonic() + 10
    while log.read_text().count("Booting worker") < 2 + recycles:
        assert time.monotonic() < deadline, "each recycled worker is replaced by a fresh one"
        time.sleep(0.2)


def scrape(metrics_port, deadline_s=10):
    """The exporter's families as {name: [samples]}, once it answers."""
    from prometheus_client.parser import text_string_to_metric_families

    deadline = time.monotonic() + deadline_s
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", metrics_port, timeout=5)
            connection.request("GET", "/metrics")
            text = connection.getresponse().read().decode()
            connection.close()
            return {family.name: family.samples for family in text_string_to_metric_families(text)}
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def sample(families, family, name, **labels):
    values = [s.value for s in families.get(family, []) if s.name == name and labels.items() <= s.labels.items()]
    return sum(values)


def test_metrics_sum_every_workers_requests_on_their_own_port(gunicorn, tmp_path):
    metrics_port = free_port()
    # gevent, the default class: each worker serves several requests at once, and its sampling
    # thread is a greenlet beside them.
    _, port, _ = gunicorn(
        GUNICORN_WORKERS="2",
        GUNICORN_WORKER_CLASS="gevent",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        APP_METRICS_PORT=str(metrics_port),
    )
    pids = set()
    for ms in (1, 2, 3) * 5:
        status, body = request(port, "GET", f"/api/sleep/{ms}")
        assert status == 200
    for _ in range(6):
        status, body = request(port, "GET", "/api/whoami")
        pids.add(body.split(b'"pid":')[1].split(b",")[0])
    assert request(port, "GET", "/no-such-page")[0] == 404
    # The app's port has no metrics: they are on their own port only.
    assert request(port, "GET", "/metrics")[0] == 404

    families = scrape(metrics_port)
    total = "flask_stack_http_requests"
    assert sample(families, total, f"{total}_total", route="/api/sleep/<ms>", status="200", method="GET") == 15
    assert sample(families, total, f"{total}_total", route="/api/whoami", status="200") == 6
    assert sample(families, total, f"{total}_total", route="unmatched", status="404") == 2
    routes = {s.labels["route"] for s in families[total]}
    assert not [route for route in routes if route.startswith("/api/sleep/") and route != "/api/sleep/<ms>"]
    latency = "flask_stack_http_request_duration_seconds"
    assert sample(families, latency, f"{latency}_count", route="/api/sleep/<ms>") == 15
    # The 3 ms sleeps are all over 2.5 ms; none of the 15 took 25 s.
    assert sample(families, latency, f"{latency}_bucket", route="/api/sleep/<ms>", le="0.0025") <= 10
    assert sample(families, latency, f"{latency}_bucket", route="/api/sleep/<ms>", le="25.0") == 15
    # Requests being served are in the gauge, each worker's share set once a second by its
    # sampling thread (metrics.py): three 3-second sleeps show as 3 within 2 s.
    in_flight = "flask_stack_http_requests_in_flight"
    sleepers = [threading.Thread(target=request, args=(port, "GET", "/api/sleep/3000")) for _ in range(3)]
    for sleeper in sleepers:
        sleeper.start()
    deadline = time.monotonic() + 2
    while sample(families, in_flight, in_flight) != 3:
        assert time.monotonic() < deadline, f"{sample(families, in_flight, in_flight)} requests in flight, not 3"
        time.sleep(0.1)
        families = scrape(metrics_port)
    for sleeper in sleepers:
        sleeper.join(timeout=10)
    # A request leaves the count when gunicorn closes its response, just after the client
    # has read it: the gauge settles at 0 within a second of the last answer.
    deadline = time.monotonic() + 5
    while sample(families, in_flight, in_flight) != 0:
        assert time.monotonic() < deadline, f"{sample(families, in_flight, in_flight)} requests still in flight"
        time.sleep(0.1)
        families = scrape(metrics_port)

    # A worker killed outright is counted by the master, and its replacement serves on.
    os.kill(int(pids.pop()), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while sample(scrape(metrics_port), "flask_stack_worker_exits", "flask_stack_worker_exits_total") < 1:
        assert time.monotonic() < deadline, "the master never counted the killed worker"
        time.sleep(0.2)
    assert request(port, "GET", "/api/whoami")[0] == 200
    families = scrape(metrics_port)
    # The dead worker's requests are still counted, summed with its successor's.
    assert sample(families, total, f"{total}_total", route="/api/whoami", status="200") == 7


def test_recycles_are_counted_with_their_reason(gunicorn, tmp_path):
    metrics_port = free_port()
    _, port, _ = gunicorn(
        GUNICORN_MAX_WORKER_MEMORY_MB="1",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        APP_METRICS_PORT=str(metrics_port),
    )
    for _ in range(3):
        assert request(port, "GET", "/api/whoami")[0] == 200
    deadline = time.monotonic() + 10
    while True:
        families = scrape(metrics_port)
        recycles = "flask_stack_worker_recycles"
        by_memory = sample(families, recycles, f"{recycles}_total", reason="memory")
        exits = sample(families, "flask_stack_worker_exits", "flask_stack_worker_exits_total")
        if by_memory >= 3 and exits >= 3:
            break
        assert time.monotonic() < deadline, (by_memory, exits)
        time.sleep(0.2)
    assert sample(families, recycles, f"{recycles}_total", reason="max_requests") == 0


def test_the_settings_probe_reports_what_gunicorn_holds(gunicorn):
    _, port, _ = gunicorn(GUNICORN_WORKER_CLASS="gthread", GUNICORN_WORKERS="2", GUNICORN_THREADS="3")
    status, body = request(port, "GET", "/api/settings")
    assert status == 200
    reported = json.loads(body)
    assert reported["worker_class"] == "gthread"
    server = reported["server"]
    assert (server["worker_class"], server["workers"], server["threads"]) == ("gthread", 2, 3)
    assert server["reload"] is False
    # The stack's own hooks' settings are the stack's, beside its limits.
    assert "max_worker_memory_mb" not in server
    assert reported["stack"]["max_worker_memory_mb"] == 256
    assert reported["stack"]["drain_seconds"] == 3
    assert reported["stack"]["sleep_max_ms"] == 10_000


# gunicorn's poll reloader's pause between looks at the files (gunicorn/reloader.py).
RELOADER_INTERVAL_S = 1


def copy_of_this_service(destination):
    """What the image holds of this folder (gunicorn.conf.py, the stack, the app), copied."""
    ignored = shutil.ignore_patterns("__pycache__", "tests")
    shutil.copy2(WEB_DIR / "gunicorn.conf.py", destination / "gunicorn.conf.py")
    for folder in ("stack", "app"):
        shutil.copytree(WEB_DIR / folder, destination / folder, ignore=ignored)
    return destination


def eventually(read, expected, within_s):
    """Seconds until read() returns something containing `expected`; fails after within_s."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if expected in read():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{expected!r} not seen within {within_s}s")


@pytest.mark.parametrize("worker_class", ["sync", "gevent"])
def test_with_reload_on_an_edit_of_a_template_or_a_module_is_served_without_a_restart(gunicorn, tmp_path, worker_class):
    web = tmp_path / "web"
    web.mkdir()
    copy_of_this_service(web)
    process, port, log = gunicorn(cwd=web, GUNICORN_RELOAD="on", GUNICORN_WORKER_CLASS=worker_class)
    # Flask has compiled the template and cached it.
    assert request(port, "GET", "/")[0] == 200
    # gunicorn's reloader takes each file's time at its first look, once a second: an edit
    # before that look would be its starting point, not a change. A person is never that fast.
    time.sleep(RELOADER_INTERVAL_S + 0.5)
    template = web / "app" / "templates" / "index.html"
    template.write_text(template.read_text().replace("<title>", "<title>edited template "))
    eventually(lambda: request(port, "GET", "/")[1].decode(), "edited template", within_s=15)
    time.sleep(RELOADER_INTERVAL_S + 0.5)
    pages = web / "app" / "pages.py"
    pages.write_text(pages.read_text() + '\n\n@blueprint.get("/edited")\ndef edited():\n    return "edited module"\n')
    eventually(lambda: request(port, "GET", "/edited")[1].decode(), "edited module", within_s=15)
    # The workers were replaced, never gunicorn's master: the same process serves on.
    assert process.poll() is None
    assert "Worker reloading:" in log.read_text()
