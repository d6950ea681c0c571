"""Per-client limits and HSTS, on two stacks of their own with low limits: one enforcing
them (NGINX_LIMITS=on), one with them switched off and a trusted TLS load balancer in front
(NGINX_TRUST_FORWARDED_PROTO=on). Also: nginx refuses to start with a switch it cannot read.
Every stack this module uses comes out unharmed (hostile.comes_out_unharmed)."""

import threading
import time

import pytest
import requests

from composed import composed_stack
from hostile import APP_HTML_CSP, DENY_ALL_CSP, assert_json_error, assert_security_headers, comes_out_unharmed

LOW_LIMITS = {"NGINX_RATE_LIMIT": "5r/s", "NGINX_RATE_LIMIT_BURST": "5", "NGINX_CONN_LIMIT": "2"}
BURST = 20  # requests sent back to back: far more than 5 burst + 5 per second
HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture(scope="module")
def limited_stack():
    with composed_stack("limited", env={**LOW_LIMITS, "NGINX_LIMITS": "on"}) as composed:
        yield composed


@pytest.fixture(scope="module")
def unlimited_stack():
    env = {**LOW_LIMITS, "NGINX_LIMITS": "off", "NGINX_TRUST_FORWARDED_PROTO": "on"}
    with composed_stack("unlimited", env=env) as composed:
        yield composed


@pytest.fixture(scope="module", autouse=True)
def every_stack_comes_out_unharmed(stack, limited_stack, unlimited_stack):
    """A 429 is the answer these tests want; a 5xx, a restart or a traceback never is."""
    with comes_out_unharmed(stack), comes_out_unharmed(limited_stack), comes_out_unharmed(unlimited_stack):
        yield


def rested(composed):
    """Let the client's request bucket drain (5 per second, 5 in excess at most)."""
    time.sleep(1.5)
    return composed


def burst(composed, path):
    with requests.Session() as session:
        return [session.get(composed.url(path), timeout=10) for _ in range(BURST)]


def concurrently(composed, path, clients):
    """`clients` requests for path at once, each on its own connection; their responses."""
    barrier = threading.Barrier(clients)
    responses = [None] * clients

    def client(index):
        barrier.wait(timeout=10)
        responses[index] = requests.get(composed.url(path), timeout=20)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(response is not None for response in responses), "a client did not finish"
    return responses


# ---------------------------------------------------------------------------------------
# 11. Rate and connection limits.


def test_a_burst_on_api_paths_gets_json_429s_with_retry_after(limited_stack):
    responses = burst(rested(limited_stack), "/api/whoami")
    statuses = [r.status_code for r in responses]
    # nodelay: 1 + the burst of 5 are served at once; then one more each 200 ms at most.
    assert statuses[:6] == [200] * 6 and set(statuses) == {200, 429}, statuses
    assert statuses.count(429) >= BURST // 2, statuses
    for response in (r for r in responses if r.status_code == 429):
        assert_json_error(response, 429, "too_many_requests")
        assert response.headers["Retry-After"] == "1"
        assert_security_headers(response)


def test_a_burst_on_pages_gets_text_429s(limited_stack):
    refused = [r for r in burst(rested(limited_stack), "/") if r.status_code == 429]
    assert refused
    for response in refused:
        assert response.headers["Content-Type"].startswith("text/plain")
        assert "Too many requests" in response.text
        assert response.headers["Retry-After"] == "1"
        assert_security_headers(response, csp=DENY_ALL_CSP)


def test_service_resumes_once_the_client_waits_retry_after(limited_stack):
    responses = burst(rested(limited_stack), "/api/whoami")
    assert responses[-1].status_code == 429
    time.sleep(int(responses[-1].headers["Retry-After"]) + 0.2)
    page = limited_stack.get("/")
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == APP_HTML_CSP


def test_a_third_concurrent_request_from_one_client_is_a_json_429(limited_stack):
    # NGINX_CONN_LIMIT=2: two slow requests in progress, a third at the same time is refused.
    responses = concurrently(rested(limited_stack), "/api/sleep/1500", 3)
    assert sorted(r.status_code for r in responses) == [200, 200, 429]
    (refused,) = [r for r in responses if r.status_code == 429]
    assert_json_error(refused, 429, "too_many_requests")
    assert refused.headers["Retry-After"] == "1"


def test_limits_switched_off_never_answer_429(unlimited_stack):
    """The same low rate and connection settings, NGINX_LIMITS=off: nothing is refused."""
    assert [r.status_code for r in burst(unlimited_stack, "/api/whoami")] == [200] * BURST
    assert [r.status_code for r in burst(unlimited_stack, "/")] == [200] * BURST
    assert [r.status_code for r in concurrently(unlimited_stack, "/api/sleep/1500", 4)] == [200] * 4


@pytest.mark.parametrize(
    "name, value",
    # Empty is not among them: an empty knob takes its default (services/nginx/defaults.envsh).
    [
        ("NGINX_LIMITS", "maybe"),
        ("NGINX_LIMITS", "true"),
        ("NGINX_TRUST_FORWARDED_PROTO", "yes"),
        ("NGINX_ACME", "yes"),
    ],
)
def test_nginx_refuses_to_start_with_a_switch_that_is_not_on_or_off(stack, name, value):
    """services/nginx/check-settings.sh runs before the config is rendered; the image is the
    one the session stack runs."""
    status, stderr = stack.run_to_exit(stack.running("nginx")[0].image, {name: value})
    assert status != 0
    assert f"check-settings: {name} must be on or off, got '{value}'" in stderr


# ---------------------------------------------------------------------------------------
# 12. HSTS follows the scheme the client used, and only a trusted proxy's word for it.


def test_behind_a_trusted_tls_proxy_https_gets_hsts(unlimited_stack):
    response = unlimited_stack.get("/api/whoami", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["Strict-Transport-Security"] == HSTS
    assert response.json()["scheme"] == "https"
    # Errors too: nginx's own 404 for a static file.
    missing = unlimited_stack.get("/static/no-such-file.css", headers={"X-Forwarded-Proto": "https"})
    assert (missing.status_code, missing.headers["Strict-Transport-Security"]) == (404, HSTS)


@pytest.mark.parametrize("proto", [None, "http", "https, http", "ftp"])
def test_behind_a_trusted_tls_proxy_plain_http_gets_no_hsts(unlimited_stack, proto):
    headers = {"X-Forwarded-Proto": proto} if proto else {}
    response = unlimited_stack.get("/api/whoami", headers=headers)
    assert "Strict-Transport-Security" not in response.headers
    assert response.json()["scheme"] == "http"


def test_without_a_trusted_proxy_a_claimed_https_gets_no_hsts(stack):
    # The default (NGINX_TRUST_FORWARDED_PROTO=off): clients reach nginx directly.
    response = stack.get("/api/whoami", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in response.headers
    assert response.json()["scheme"] == "http"
