"""Bad requests get clear JSON errors on API paths, from Flask or from nginx."""

import pytest
import requests

BODY_LIMIT = 1024 * 1024  # NGINX_CLIENT_MAX_BODY_SIZE=1m and APP_MAX_BODY_BYTES=1048576


def assert_json_error(response, status):
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status
    assert body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_unknown_api_path_is_a_json_404(stack):
    assert_json_error(stack.get("/api/no-such-endpoint"), 404)


@pytest.mark.parametrize(
    "path", ["/api/sleep/abc", "/api/sleep/-5", "/api/sleep/100000000", "/api/compute/1e9", "/api/compute/99999999999"]
)
def test_bad_parameters_are_a_json_400(stack, path):
    assert_json_error(stack.get(path), 400)


def test_wrong_method_is_a_json_405_with_allow(stack):
    response = requests.put(stack.url("/api/whoami"), timeout=10)
    assert_json_error(response, 405)
    assert "GET" in response.headers["Allow"]


def test_body_at_the_limit_passes_both_layers(stack):
    response = requests.post(stack.url("/api/echo"), data=b"a" * BODY_LIMIT, timeout=30)
    assert response.status_code == 200
    assert response.json()["bytes"] == BODY_LIMIT


def test_oversized_body_is_a_json_413_from_nginx(stack):
    response = requests.post(stack.url("/api/echo"), data=b"a" * (BODY_LIMIT + 1), timeout=30)
    body = assert_json_error(response, 413)
    assert body["error"] == "request_entity_too_large"
