"""X-Request-ID: made by nginx when absent or malformed, kept when well-formed, logged by both."""

import json
import re
import subprocess
import time

import pytest

from composed import ACCESS_LOG_FLUSH_S, log_entries, wait_for, wait_for_access_log_flush

pytestmark = pytest.mark.worker_count

NGINX_GENERATED = re.compile(r"[0-9a-f]{32}")


def test_request_id_is_generated_when_absent(stack):
    response = stack.get("/api/whoami")
    request_id = response.headers["X-Request-ID"]
    assert NGINX_GENERATED.fullmatch(request_id)
    assert response.json()["request_id"] == request_id


def test_well_formed_request_id_is_kept(stack):
    response = stack.get("/api/whoami", headers={"X-Request-ID": "client-trace.0042"})
    assert response.headers["X-Request-ID"] == "client-trace.0042"
    assert response.json()["request_id"] == "client-trace.0042"


@pytest.mark.parametrize("malformed", ["short", "has spaces in it", 'quote"injection-attempt', "x" * 200])
def test_malformed_request_id_is_replaced(stack, malformed):
    response = stack.get("/api/whoami", headers={"X-Request-ID": malformed})
    request_id = response.headers["X-Request-ID"]
    assert request_id != malformed
    assert NGINX_GENERATED.fullmatch(request_id)
    assert response.json()["request_id"] == request_id


def test_request_id_is_on_static_and_error_responses_too(stack):
    assert NGINX_GENERATED.fullmatch(stack.get("/static/css/site.css").headers["X-Request-ID"])
    assert stack.get("/api/nope", headers={"X-Request-ID": "error-trace-1"}).headers["X-Request-ID"] == "error-trace-1"


def test_the_same_request_id_is_in_nginx_and_gunicorn_logs(stack):
    request_id = stack.get("/api/sleep/1").headers["X-Request-ID"]

    def logged_by_both():
        nginx_entries = [
            json.loads(line.split("| ", 1)[-1]) for line in stack.logs("nginx").splitlines() if request_id in line
        ]
        web_entries = [entry for entry in log_entries(stack.logs("web")) if entry.get("request_id") == request_id]
        return nginx_entries and web_entries and (nginx_entries, web_entries)

    nginx_entries, web_entries = wait_for(logged_by_both, deadline_s=10, message="request id in both logs")
    assert nginx_entries[0]["request_id"] == request_id
    assert nginx_entries[0]["request"].startswith("GET /api/sleep/1 ")
    # gunicorn's access line (on in the test stacks) names its fields as nginx's does.
    (access,) = [entry for entry in web_entries if entry["logger"] == "gunicorn.access"]
    assert access["request"] == "GET /api/sleep/1 HTTP/1.1" and access["status"] == 200
    assert access["request_time"] >= 0.001


def test_one_jq_filter_follows_a_request_through_nginx_and_gunicorn(stack):
    """The filter docs/configuration.md shows, run by the real jq over both services' logs."""
    request_id = stack.post("/api/echo", data=b"followed", headers={"X-Request-ID": "followed-0001"}).headers[
        "X-Request-ID"
    ]
    assert request_id == "followed-0001"
    wait_for_access_log_flush()
    logs = stack.compose("logs", "nginx", "web").stdout
    followed = subprocess.run(
        ["jq", "-R", "-c", "--arg", "id", request_id, JQ_FOLLOW],
        input=logs, capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    entries = [json.loads(line) for line in followed.stdout.splitlines()]
    assert {entry.get("logger", "nginx") for entry in entries} == {"nginx", "gunicorn.access"}, entries
    assert all(entry["request_id"] == request_id for entry in entries)


# docs/configuration.md, "Request ids and logs": every JSON line of either service, of one request.
# Whatever precedes a line's JSON is dropped: compose's "nginx-1  | " prefix, and the
# terminal control sequence some Compose versions put first even when not on a terminal.
JQ_FOLLOW = 'sub("^[^{]*"; "") | fromjson? | select(.request_id == $id)'


def test_nginx_writes_its_access_log_in_batches_within_the_flush_interval(stack):
    def held_back():
        wait_for_access_log_flush()  # an empty buffer: the next line starts a new interval
        request_id = stack.get("/api/whoami").headers["X-Request-ID"]
        time.sleep(0.3)  # ample for a line written at once to reach Docker's log
        return request_id, request_id not in stack.logs("nginx")

    # Held in the worker's buffer, not written line by line. (nginx's own healthcheck, every
    # 10 s, can start the interval just before: then the line is written early; try again.)
    attempts = [held_back() for _ in range(3)]
    assert any(held for _, held in attempts), "every line was written at once: the log is not buffered"
    # ...and written once the interval is over.
    for request_id, _ in attempts:
        wait_for(
            lambda rid=request_id: rid in stack.logs("nginx"),
            deadline_s=ACCESS_LOG_FLUSH_S + 2,
            interval_s=0.1,
            message="the buffered access log line",
        )
