"""Hostile use of the protocol against the composed stack: unexpected methods, Host header
abuse, and the security headers every response carries, errors included."""

import pytest
import requests

from hostile import (
    APP_HTML_CSP,
    BODY_LIMIT,
    DENY_ALL_CSP,
    SECURITY_HEADERS,
    assert_json_error,
    assert_security_headers,
    request_bytes,
    send,
    stack_comes_out_unharmed,  # noqa: F401 (autouse guard for this module)
)


def raw(stack, method, target, headers=(), host=b"127.0.0.1", version=b"HTTP/1.1"):
    return send(stack, request_bytes(method, target, [*headers, (b"Connection", b"close")], host=host, version=version))


# ---------------------------------------------------------------------------------------
# 7. Methods.


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_a_method_an_api_route_lacks_is_a_json_405_with_allow(stack, method):
    response = requests.request(method, stack.url("/api/whoami"), timeout=10)
    assert_json_error(response, 405, "method_not_allowed")
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed == {"GET", "HEAD", "OPTIONS"}


@pytest.mark.parametrize(
    "method, path",
    [("POST", "/static/css/site.css"), ("DELETE", "/static/css/site.css"), ("PUT", "/static/no-such-file.css")],
)
def test_writing_to_static_is_a_405_allowing_get_and_head(stack, method, path):
    response = raw(stack, method.encode(), path.encode(), [(b"Content-Length", b"0")])
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.count("Allow") == 1
    assert_security_headers(response)


def test_trace_on_an_api_path_is_a_json_501(stack):
    """nginx refuses TRACE before it picks a location, with a bare 405 lacking the Allow header
    RFC 9110 15.5.6 requires. No resource here implements it: 501 (RFC 9110 9.1)."""
    response = raw(stack, b"TRACE", b"/api/whoami")
    assert_json_error(response, 501, "not_implemented")
    assert "Allow" not in response.headers


def test_connect_is_a_501(stack):
    # Like TRACE; its target is an authority, so there is no path to answer JSON for.
    response = raw(stack, b"CONNECT", b"127.0.0.1:8080")
    assert response.status_code == 501
    assert_security_headers(response)


def test_connect_with_a_path_is_a_malformed_request_line(stack):
    # RFC 9112 3.2.3: CONNECT's target is host:port, never a path.
    assert raw(stack, b"CONNECT", b"/api/whoami").status_code == 400


@pytest.mark.parametrize("target", [b"/", b"/static/css/site.css", b"/healthz"])
def test_trace_elsewhere_is_nginxs_501_and_never_echoes_the_request(stack, target):
    response = raw(stack, b"TRACE", target, [(b"Cookie", b"secret=trace-me")])
    assert response.status_code == 501
    assert b"trace-me" not in response.content
    assert_security_headers(response)


@pytest.mark.parametrize("method", [b"FOO", b"PROPFIND", b"F_O-O"])
def test_a_made_up_method_on_an_api_path_is_the_apps_json_405_with_allow(stack, method):
    # Flask answers for every route: the method is not among the route's. Allow says which are.
    response = raw(stack, method, b"/api/whoami")
    assert_json_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("method", [b"GO", b"X", b"A" * 21], ids=["2-chars", "1-char", "21-chars"])
def test_a_method_gunicorn_cannot_take_is_nginxs_json_501(stack, method):
    """gunicorn takes methods of 3 to 20 characters and answered others with its own HTML."""
    assert_json_error(raw(stack, method, b"/api/whoami"), 501, "not_implemented")


# ---------------------------------------------------------------------------------------
# 9. Host.


def whoami_host(stack, host, headers=()):
    response = raw(stack, b"GET", b"/api/whoami", headers, host=host)
    assert response.status_code == 200, response.text[:300]
    return response.json()["host"]


@pytest.mark.parametrize(
    "head",
    [[], [(b"Host", b"")], [(b"Host", b"a.example"), (b"Host", b"b.example")]],
    ids=["missing", "empty", "twice"],
)
def test_http_1_1_without_exactly_one_host_is_nginxs_json_400(stack, head):
    # RFC 9112 3.2: a server must answer 400 to an HTTP/1.1 request without exactly one Host.
    response = raw(stack, b"GET", b"/api/whoami", head, host=None)
    assert_json_error(response, 400, "bad_request")
    assert_security_headers(response)


@pytest.mark.parametrize(
    "host",
    [
        b"a b.example",
        b"a/b.example",
        b"user@a.example",
        b"a<b>.example",
        b"a\\b.example",
        b"[::1",
        b"a.example:99999",
        b"a.example:port",
        b"caf\xc3\xa9.example",
        b"a..example",
    ],
)
def test_a_host_nginx_cannot_parse_is_its_json_400(stack, host):
    assert_json_error(raw(stack, b"GET", b"/api/whoami", host=host), 400, "bad_request")


@pytest.mark.parametrize(
    "host", [b"a;b.example", b"a_b.example", b"a,b.example", b"a'b.example", b"a$b.example", b"a%00b.example"]
)
def test_a_host_nginx_allows_but_the_app_does_not_is_never_reflected(stack, host):
    """URI syntax allows these characters in a host name, so nginx passes them on; werkzeug
    does not, and takes such a request as one without a host rather than echo it."""
    assert whoami_host(stack, host) == ""


def test_a_host_label_over_63_characters_is_the_apps_json_400(stack):
    # DNS labels are 63 characters at most; encoding the name for routing fails.
    assert whoami_host(stack, b"a" * 63) == "a" * 63
    assert_json_error(raw(stack, b"GET", b"/api/whoami", host=b"a" * 64), 400, "bad_request")


@pytest.mark.parametrize(
    "target, expected",
    [
        (b"http://a.example/api/whoami", "a.example"),
        (b"http://a.example:8443/api/whoami", "a.example:8443"),
        (b"/api/whoami?next=http://a.example/", "b.example"),  # origin-form: the Host header's
    ],
)
def test_an_absolute_form_request_line_names_the_host_the_app_sees(stack, target, expected):
    """RFC 9112 3.2.2: the request-target's host wins over the Host header, and a proxy must
    forward it. nginx routed by it while telling the app the Host header's."""
    response = raw(stack, b"GET", target, host=b"b.example")
    assert response.status_code == 200
    assert response.json()["host"] == expected


def test_forwarded_host_headers_are_not_believed(stack):
    spoofs = [
        (b"X-Forwarded-Host", b"evil.example"),
        (b"Forwarded", b"host=evil.example;proto=https"),
        (b"X-Forwarded-Server", b"evil.example"),
        (b"X-Original-Host", b"evil.example"),
    ]
    assert whoami_host(stack, b"good.example", spoofs) == "good.example"
    # Nor in URLs the app builds: Flask's redirect to the canonical path of //.
    redirect = raw(stack, b"GET", b"/api/compute//1", spoofs, host=b"good.example")
    assert redirect.status_code == 308
    assert redirect.headers["Location"] == "http://good.example/api/compute/1"


def test_http_1_0_without_host_is_served(stack):
    # HTTP/1.0 has no Host requirement (RFC 9112 3.2 binds only HTTP/1.1).
    response = raw(stack, b"GET", b"/api/whoami", host=None, version=b"HTTP/1.0")
    assert response.status_code == 200


# ---------------------------------------------------------------------------------------
# 10. Security headers on every kind of response, once each; HSTS never over plain http.


def revalidated(stack, path):
    etag = raw(stack, b"GET", path).headers["ETag"]
    return raw(stack, b"GET", path, [(b"If-None-Match", etag.encode())])


RESPONSES = {
    "200-html-page": (lambda s: raw(s, b"GET", b"/"), 200, APP_HTML_CSP),
    "200-json": (lambda s: raw(s, b"GET", b"/api/whoami"), 200, DENY_ALL_CSP),
    "200-static-file": (lambda s: raw(s, b"GET", b"/static/css/site.css"), 200, DENY_ALL_CSP),
    "304-static-file": (lambda s: revalidated(s, b"/static/css/site.css"), 304, DENY_ALL_CSP),
    "404-app-json": (lambda s: raw(s, b"GET", b"/api/no-such-endpoint"), 404, DENY_ALL_CSP),
    "404-app-html": (lambda s: raw(s, b"GET", b"/no-such-page"), 404, APP_HTML_CSP),
    "404-nginx-static": (lambda s: raw(s, b"GET", b"/static/no-such-file.css"), 404, DENY_ALL_CSP),
    "405-nginx-static": (
        lambda s: raw(s, b"POST", b"/static/css/site.css", [(b"Content-Length", b"0")]),
        405,
        DENY_ALL_CSP,
    ),
    "413-nginx": (
        lambda s: raw(s, b"POST", b"/api/echo", [(b"Content-Length", b"%d" % (BODY_LIMIT + 1))]),
        413,
        DENY_ALL_CSP,
    ),
    "400-nginx-garbage": (lambda s: send(s, b"garbage\r\n\r\n"), 400, DENY_ALL_CSP),
    "400-nginx-json": (lambda s: raw(s, b"GET", b"/api/whoami", host=None), 400, DENY_ALL_CSP),
    "414-nginx": (lambda s: raw(s, b"GET", b"/api/whoami?" + b"q" * 9000), 414, DENY_ALL_CSP),
    "501-nginx": (lambda s: raw(s, b"TRACE", b"/api/whoami"), 501, DENY_ALL_CSP),
    "505-nginx": (lambda s: raw(s, b"GET", b"/api/whoami", version=b"HTTP/2.0"), 505, DENY_ALL_CSP),
}


@pytest.mark.parametrize("kind", RESPONSES)
def test_every_response_carries_the_security_headers_once(stack, kind):
    make, status, policy = RESPONSES[kind]
    response = make(stack)
    assert response.status_code == status
    assert_security_headers(response, csp=policy)
    for name in [*SECURITY_HEADERS, "Content-Security-Policy", "X-Request-ID"]:
        assert response.count(name) == 1, f"{name} sent {response.count(name)} times"
