"""Hostile paths, queries and header values against the composed stack: traversal out of
/static/, invalid UTF-8 and control characters, and absurd parameters for the work endpoints.
Nothing outside the static folder is ever served, and the app answers 4xx, never 5xx."""

import pytest

from hostile import (
    APP_HTML_CSP,
    DENY_ALL_CSP,
    LEAK_MARKERS,
    assert_json_error,
    assert_security_headers,
    new_request_id,
    request_bytes,
    send,
    stack_comes_out_unharmed,  # noqa: F401 (autouse guard for this module)
    web_logs,
)


def get(stack, target, headers=()):
    """GET target (raw bytes, sent exactly as given) on a connection of its own."""
    return send(stack, request_bytes(b"GET", target, [*headers, (b"Connection", b"close")]))


# ---------------------------------------------------------------------------------------
# 5. Traversal: whatever the spelling, nothing outside the static folder is served.

# (target, status, who answers): 400 from nginx where it finds a ".." above the root while
# normalizing, 404 from nginx where the name is just not a file, and 404 from the app where
# the normalized path left /static/ (nginx routes by it, but passes on the path as sent)
# and Flask's static route refused a path outside its folder.
NGINX, APP = DENY_ALL_CSP, APP_HTML_CSP
TRAVERSALS = [
    (b"/static/../../etc/passwd", 400, NGINX),
    (b"/static/../../../../../../etc/passwd", 400, NGINX),
    (b"/static/%2e%2e/%2e%2e/etc/passwd", 400, NGINX),
    (b"/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd", 400, NGINX),
    (b"/static/..%2f..%2f..%2fetc%2fpasswd", 400, NGINX),
    (b"/static/.%2e/.%2e/.%2e/etc/passwd", 400, NGINX),
    (b"/static/%252e%252e%252f%252e%252e%252fetc%252fpasswd", 404, NGINX),
    (b"/static/..\\..\\..\\etc\\passwd", 404, NGINX),
    (b"/static/..%5c..%5c..%5cetc%5cpasswd", 404, NGINX),
    (b"/static/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", 404, NGINX),
    (b"/static/%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afetc%c0%afpasswd", 404, NGINX),
    (b"/static/css/site.css%00", 400, NGINX),
    (b"/static/..%00/etc/passwd", 400, NGINX),
    (b"/static//etc/passwd", 404, NGINX),
    (b"/static/.%2e/", 404, APP),
    (b"/static/../nginx.conf", 404, APP),
    (b"/static/../index.html", 404, APP),
    (b"/static/%2e%2e/../../etc/nginx/nginx.conf", 400, NGINX),
    (b"/static/../../proc/self/environ", 400, NGINX),
    (b"http://127.0.0.1/static/../../etc/passwd", 400, NGINX),
    (b"http://127.0.0.1/etc/passwd", 404, APP),
]


@pytest.mark.parametrize("target, status, policy", TRAVERSALS, ids=[repr(t)[2:50] for t, _, _ in TRAVERSALS])
def test_traversal_out_of_static_serves_nothing(stack, target, status, policy):
    response = get(stack, target)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    for marker in LEAK_MARKERS:
        assert marker not in response.content
    # The content policy tells who answered: nginx's deny-all, or the app's for its HTML.
    assert_security_headers(response, csp=policy)


@pytest.mark.parametrize(
    "target", [b"/static/css/site.css", b"/static/css/%2e%2e/css/site.css", b"/api/../static/css/site.css"]
)
def test_dot_segments_that_stay_inside_static_serve_the_file(stack, target):
    """The control: the same requests do reach files, when they stay inside the folder."""
    response = get(stack, target)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/css"


# ---------------------------------------------------------------------------------------
# 6. Invalid UTF-8 and control characters: in paths, queries and header values.

# (target, status, error). Percent-encoded garbage reaches the app, which answers 404 or 400;
# raw bytes outside printable ASCII are refused by nginx (RFC 9112 3.2).
ODD_TARGETS = [
    (b"/api/whoami%ff", 404, "not_found"),
    (b"/api/%c3%28", 404, "not_found"),
    (b"/api/whoami%0d%0aSet-Cookie:%20injected=1", 404, "not_found"),
    (b"/api/sleep/%ff", 400, "bad_request"),
    (b"/api/sleep/%c3%28", 400, "bad_request"),
    (b"/api/sleep/%e2%80%ae1", 400, "bad_request"),
    (b"/api/sleep/1%0a", 400, "bad_request"),
    (b"/api/whoami\xff", 400, "bad_request"),
    (b"/api/sleep/\xff\xfe", 400, "bad_request"),
    (b"/api/sleep/\xd9\xa1", 400, "bad_request"),
    (b"/api/whoami?q=\xff", 400, "bad_request"),
    (b"/api/whoami?q=\xc3\xbc", 400, "bad_request"),
]


@pytest.mark.parametrize("target, status, error", ODD_TARGETS, ids=[repr(t)[2:40] for t, _, _ in ODD_TARGETS])
def test_invalid_utf8_in_the_target_is_a_json_4xx(stack, target, status, error):
    response = get(stack, target)
    assert_json_error(response, status, error)
    assert_security_headers(response)
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    "target",
    [
        b"/api/whoami?%ff=%fe",
        b"/api/whoami?q=%c3%28&n=%00",
        b"/api/whoami?q=%0d%0aSet-Cookie:%20injected=1",
        b"/api/sleep/1?%ff%00",
    ],
)
def test_a_percent_encoded_query_the_endpoint_ignores_is_served(stack, target):
    response = get(stack, target)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("target", [b"/api/sleep/1%00", b"/api/whoami?q=\x01", b"/api/whoami?q=\t"])
def test_nul_and_controls_in_the_target_are_nginxs_400(stack, target):
    """nginx refuses these while reading the request line, before it has a path: its HTML page."""
    response = get(stack, target)
    assert response.status_code == 400
    assert_security_headers(response)


@pytest.mark.parametrize("path", [b"/api/whoami", b"/api/sleep/1"])
@pytest.mark.parametrize(
    "header",
    [
        (b"X-Note", b"\xff\xfe"),
        (b"X-Note", b"\xc3\x28"),
        (b"User-Agent", b"caf\xc3\xa9\t\xff"),
        (b"Accept-Language", b"\x80\x81"),
    ],
    ids=["ff-fe", "c3-28", "utf8-tab-ff", "80-81"],
)
def test_obs_text_in_header_values_is_served(stack, path, header):
    # RFC 9110 5.5: bytes 0x80-0xFF (obs-text) and HTAB are allowed in field values.
    assert get(stack, path, [header]).status_code == 200


@pytest.mark.parametrize("value", [b"\xff" * 16, b"abcdefgh\x7f", b"../../etc/passwd", b"a" * 129])
def test_a_malformed_request_id_is_replaced_not_echoed(stack, value):
    response = get(stack, b"/api/whoami", [(b"X-Request-ID", value)])
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] != value.decode("latin-1")
    assert response.json()["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.parametrize("value", [b"a\x00b", b"a\rb"], ids=["nul", "bare-cr"])
def test_nul_or_bare_cr_in_a_header_value_is_nginxs_json_400(stack, value):
    response = get(stack, b"/api/whoami", [(b"X-Note", value)])
    assert_json_error(response, 400, "bad_request")


@pytest.mark.parametrize("value", [b"a\x01b", b"a\x1bb", b"a\x7fb"], ids=["soh", "esc", "del"])
def test_other_controls_in_a_header_value_are_gunicorns_400_before_the_app(stack, value):
    """RFC 9110 5.5: control characters other than HTAB are invalid in a field value. nginx
    passes header values on byte for byte (it refuses only NUL and bare CR, above) and has no
    directive to inspect every header, so gunicorn refuses these before the app sees them,
    with its own HTML page: rewriting it as JSON took replacing gunicorn's write_error, which
    the stack no longer does (docs/configuration.md, "What gunicorn answers"). nginx still
    adds its headers and the request id."""
    request_id = new_request_id()
    response = get(stack, b"/api/whoami", [(b"X-Request-ID", request_id.encode()), (b"X-Note", value)])
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "text/html"
    assert response.headers["X-Request-ID"] == request_id
    assert_security_headers(response)
    assert request_id not in web_logs(stack)


# ---------------------------------------------------------------------------------------
# 8. Absurd values for /api/sleep/<ms> and /api/compute/<n>.

ABSURD = [
    "/api/sleep/-1",
    "/api/sleep/-0",
    "/api/sleep/1.5",
    "/api/sleep/1e3",
    "/api/sleep/0x10",
    "/api/sleep/+1",
    "/api/sleep/%201",
    "/api/sleep/10001",
    "/api/sleep/" + "1" + "0" * 30,
    "/api/sleep/%D9%A1%D9%A2",  # Arabic-Indic digits
    "/api/sleep/%EF%BC%91",  # fullwidth digit one
    "/api/sleep/%C2%B2",  # superscript two: str.isdigit() says yes
    "/api/sleep/" + "9" * 5000,  # beyond int()'s 4300 digits
    "/api/compute/NaN",
    "/api/compute/-1",
    "/api/compute/1000001",
    "/api/compute/99999999999999999999",
    "/api/compute/" + "x" * 6000,
]


@pytest.mark.parametrize("path", ABSURD, ids=[p if len(p) < 40 else p[:36] + "..." for p in ABSURD])
def test_an_absurd_parameter_is_a_short_json_400(stack, path):
    response = get(stack, path.encode())
    body = assert_json_error(response, 400, "bad_request")
    assert len(body["message"]) < 200, "the message must not echo a huge value whole"


@pytest.mark.parametrize("path", ["/api/sleep/", "/api/sleep", "/api/sleep/1/2", "/api/compute/1/"])
def test_a_missing_or_extra_segment_is_a_json_404(stack, path):
    assert_json_error(get(stack, path.encode()), 404, "not_found")


def test_leading_zeros_are_just_a_number(stack):
    response = get(stack, b"/api/sleep/" + b"0" * 4400 + b"1")
    assert response.status_code == 200
    assert response.json()["slept_ms"] == 1
