"""nginx's own gateway errors on API paths are JSON too (a stack with a 1s read timeout)."""

import pytest

from composed import composed_stack


@pytest.fixture(scope="module")
def impatient_stack():
    with composed_stack("impatient", env={"NGINX_PROXY_READ_TIMEOUT": "1s"}) as composed:
        yield composed


def test_slow_upstream_is_a_json_504_on_api_paths(impatient_stack):
    response = impatient_stack.get("/api/sleep/3000")
    assert response.status_code == 504
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "gateway_timeout" and body["status"] == 504
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_requests_within_the_timeout_still_succeed(impatient_stack):
    assert impatient_stack.get("/api/sleep/100").status_code == 200
