"""Unit tests of /healthz and the probes, inside the stack (stack/probes/, stack/wrapping.py)."""

import hashlib
import logging

import pytest

from app import create_app


def test_healthz_reports_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_whoami_reports_the_client_behind_exactly_one_proxy(client):
    response = client.get(
        "/api/whoami",
        headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": "172.18.0.5"},
    )
    body = response.get_json()
    # Only the last hop (the address nginx appended) is trusted: a spoofed first entry is not.
    assert body["client_ip"] == "198.51.100.7"
    assert body["scheme"] == "https"
    for field in ("hostname", "version", "pid", "worker_class", "request_id"):
        assert field in body


def test_settings_report_the_stacks_limits_and_no_server_settings_outside_gunicorn(wrapped, monkeypatch):
    monkeypatch.delenv("SERVER_SETTINGS", raising=False)
    body = wrapped(SLEEP_MAX_MS=500).get("/api/settings").get_json()
    assert body["server"] == {}
    assert body["stack"]["sleep_max_ms"] == 500
    assert body["stack"]["max_body_bytes"] == 1024 * 1024
    assert {"hostname", "version", "worker_class"} <= set(body)


def test_forwarded_headers_are_ignored_when_no_proxy_is_trusted(wrapped):
    client = wrapped(TRUSTED_PROXY_HOPS=0)
    body = client.get(
        "/api/whoami",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": "192.0.2.1"},
    ).get_json()
    assert body["client_ip"] == "192.0.2.1"
    assert body["scheme"] == "http"


def test_sleep_waits_the_requested_time(client):
    body = client.get("/api/sleep/20").get_json()
    assert body["slept_ms"] == 20
    assert body["elapsed_ms"] >= 19


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5", "10001", "99999999999999999999", "١٢", "%20"])
def test_sleep_refuses_bad_or_unbounded_values_with_json_400(client, raw):
    response = client.get(f"/api/sleep/{raw}")
    assert response.status_code == 400
    body = response.get_json()
    assert body["status"] == 400 and body["error"] == "bad_request"
    assert "ms must" in body["message"]


@pytest.mark.parametrize("path", ["/api/sleep/" + "9" * 5000, "/api/compute/" + "9" * 4301, "/api/compute/" + "1" * 20])
def test_huge_numbers_are_a_short_400_not_a_500(client, path):
    # int() refuses strings of more than 4300 digits: the bound is checked before it.
    response = client.get(path)
    assert response.status_code == 400
    message = response.get_json()["message"]
    assert "must be at most" in message
    assert len(message) < 120


def test_leading_zeros_do_not_count_towards_the_bound(client):
    assert client.get("/api/sleep/" + "0" * 4400 + "1").get_json()["slept_ms"] == 1


def test_compute_chains_sha256_n_times(client):
    digest = b""
    for _ in range(5):
        digest = hashlib.sha256(digest).digest()
    body = client.get("/api/compute/5").get_json()
    assert body == {**body, "rounds": 5, "sha256": digest.hex()}


def test_compute_refuses_more_rounds_than_the_bound(client):
    response = client.get("/api/compute/1000001")
    assert response.status_code == 400
    assert "at most 1000000" in response.get_json()["message"]


def test_echo_reports_body_size_and_hash(client):
    body = client.post("/api/echo", data=b"hello").get_json()
    assert body == {"bytes": 5, "sha256": hashlib.sha256(b"hello").hexdigest()}


def test_body_over_the_limit_is_a_json_413(client):
    response = client.post("/api/echo", data=b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/does-not-exist")
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"] == "not_found"


def test_wrong_method_is_a_json_405_with_allow(client):
    response = client.delete("/api/whoami")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_non_api_404_stays_html(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_unexpected_exception_on_api_path_is_a_json_500_without_details():
    app = create_app({"TESTING": False})

    @app.get("/api/boom")
    def boom():
        raise RuntimeError("secret detail")

    response = app.test_client().get("/api/boom")
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"] == "internal_server_error"
    assert "secret" not in response.get_data(as_text=True)


def test_unexpected_exception_is_logged_with_its_traceback(caplog):
    app = create_app({"TESTING": False})

    @app.get("/api/boom")
    def boom():
        raise RuntimeError("logged detail")

    with caplog.at_level(logging.ERROR):
        assert app.test_client().get("/api/boom").status_code == 500
    assert [record.exc_info[0] for record in caplog.records if record.exc_info] == [RuntimeError]
