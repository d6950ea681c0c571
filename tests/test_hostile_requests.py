"""Hostile requests against the composed stack: oversized bodies and headers, malformed
request lines, and request smuggling. nginx refuses each with the status the HTTP RFCs give
(JSON on /api/ paths when it could read the path), and gunicorn never sees a smuggled request."""

import pytest
import requests

from hostile import (
    BODY_LIMIT,
    assert_json_error,
    assert_security_headers,
    exchange,
    new_request_id,
    parse_responses,
    request_bytes,
    send,
    stack_comes_out_unharmed,  # noqa: F401 (autouse guard for this module)
    web_logs,
)

# ---------------------------------------------------------------------------------------
# 1. Bodies: nginx and Flask draw the line at the same byte.


def chunks_of(total, size=64 * 1024):
    """A generator body: requests sends it with Transfer-Encoding: chunked."""
    sent = 0
    while sent < total:
        step = min(size, total - sent)
        sent += step
        yield b"a" * step


def post_echo(stack, size, chunked, request_id):
    body = chunks_of(size) if chunked else b"a" * size
    return requests.post(stack.url("/api/echo"), data=body, headers={"X-Request-ID": request_id}, timeout=30)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_of_exactly_the_limit_reaches_the_app(stack, chunked):
    response = post_echo(stack, BODY_LIMIT, chunked, new_request_id())
    assert response.status_code == 200
    assert response.json()["bytes"] == BODY_LIMIT


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_one_byte_over_the_limit_is_nginxs_json_413_and_never_reaches_gunicorn(stack, chunked):
    request_id = new_request_id()
    response = post_echo(stack, BODY_LIMIT + 1, chunked, request_id)
    assert_json_error(response, 413, "request_entity_too_large")
    assert_security_headers(response)
    assert request_id not in web_logs(stack)


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(stack):
    """nginx answers from the Content-Length alone: the client need not send a gigabyte."""
    data = request_bytes(b"POST", b"/api/echo", [(b"Content-Length", b"1000000000"), (b"Connection", b"close")])
    assert_json_error(send(stack, data), 413, "request_entity_too_large")


# ---------------------------------------------------------------------------------------
# 2. Headers: nginx's buffers (4 x 8k) decide, and gunicorn takes whatever nginx passes on.


def whoami_with(headers, target=b"/api/whoami"):
    return request_bytes(b"GET", target, [*headers, (b"Connection", b"close")])


def padded_header(name, line_length, separator=b": "):
    """A header line of exactly line_length bytes, CRLF not counted."""
    return name, b"a" * (line_length - len(name) - len(separator))


@pytest.mark.parametrize("name", [b"X-Padding", b"X-Forwarded-For"])
def test_the_longest_header_line_nginx_takes_reaches_the_app(stack, name):
    # 8190 bytes and CRLF fill one 8k buffer; nginx appends the client to X-Forwarded-For.
    response = send(stack, whoami_with([padded_header(name, 8190)]))
    assert response.status_code == 200, response.text[:300]


@pytest.mark.parametrize(
    "header",
    [padded_header(b"X-Padding", 8191), (b"Cookie", b"session=" + b"c" * 16000), (b"Host", b"h" * 9000)],
    ids=["header-line-8191", "cookie-16k", "host-9k"],
)
def test_a_header_line_over_8k_is_nginxs_json_400(stack, header):
    # nginx's internal 494 "Request Header Or Cookie Too Large", sent as a 400.
    response = send(stack, whoami_with([header]))
    assert_json_error(response, 400, "bad_request")
    assert_security_headers(response)


def test_hundreds_of_headers_within_32k_reach_the_app(stack):
    """gunicorn's default of 100 header fields would refuse these with its own HTML 431."""
    response = send(stack, whoami_with([(b"X-Field-%d" % i, b"v") for i in range(500)]))
    assert response.status_code == 200


def test_headers_over_32k_in_all_are_nginxs_json_400(stack):
    response = send(stack, whoami_with([(b"X-Field-%d" % i, b"v" * 20) for i in range(2000)]))
    assert_json_error(response, 400, "bad_request")


def request_line_of(length, path=b"/api/whoami?q="):
    """GET <path><padding> HTTP/1.1, exactly length bytes long."""
    padding = length - len(b"GET ") - len(path) - len(b" HTTP/1.1")
    return b"GET " + path + b"a" * padding + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("length", [7000, 8190])
def test_a_request_line_up_to_8190_bytes_reaches_the_app(stack, length):
    """gunicorn's default limit of 4094 would refuse a 7000-byte line with its own HTML 414."""
    assert send(stack, request_line_of(length)).status_code == 200


@pytest.mark.parametrize("length", [8191, 100_000])
def test_a_longer_request_line_is_nginxs_414(stack, length):
    """HTML even under /api/: nginx stops reading the line at 8k, so it never learns the path."""
    response = send(stack, request_line_of(length))
    assert response.status_code == 414
    assert "414 Request-URI Too Large" in response.text
    assert_security_headers(response)


# ---------------------------------------------------------------------------------------
# 3. Request lines: raw bytes, since no HTTP client sends these.


@pytest.mark.parametrize(
    "line, status",
    [
        (b"garbage", 400),
        (b"GET /api/whoami HTTP/9.9", 505),
        (b"GET /api/whoami HTTP/2.0", 505),
        (b"GET /api/whoami HTTP/10.1", 505),
        (b"GET /api/whoami HTTP/0.9", 400),
        (b"GET /api/whoami HTTP/1", 400),
        (b"GET /api/whoami FTP/1.1", 400),
        (b"get /api/whoami HTTP/1.1", 400),
        (b"GET /api/who ami HTTP/1.1", 400),
        (b"GET /api/who\x00ami HTTP/1.1", 400),
        (b"G\x00T /api/whoami HTTP/1.1", 400),
        (b"GET /api/whoami HTTP/1.1 trailing", 400),
        (b"GET\t/api/whoami\tHTTP/1.1", 400),
        (b"GET api/whoami HTTP/1.1", 400),
        (b"OPTIONS * HTTP/1.1", 400),
    ],
    ids=lambda value: repr(value)[2:40] if isinstance(value, bytes) else str(value),
)
def test_a_malformed_request_line_gets_the_status_the_rfcs_give(stack, line, status):
    """400 for a line that does not parse, 505 for a major version other than 1. nginx has
    not read the path of these, so they are its HTML pages, with its headers."""
    response = send(stack, line + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/html"
    assert_security_headers(response)


@pytest.mark.parametrize(
    "line",
    [b"GET /api/whoami HTTP/1.2", b"GET  /api/whoami  HTTP/1.1", b"GET /api/whoami HTTP/1.0"],
    ids=["minor-version-2", "double-spaces", "http-1.0"],
)
def test_tolerable_request_lines_are_served(stack, line):
    """RFC 9110 2.5: an unknown minor version is answered as the highest one supported;
    RFC 9112 3: extra whitespace between the parts may be tolerated."""
    assert send(stack, line + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").status_code == 200


def test_bare_lf_line_endings_are_served(stack):
    # RFC 9112 2.2: a recipient may take a bare LF as a line terminator.
    response = send(stack, b"GET /api/whoami HTTP/1.1\nHost: 127.0.0.1\nConnection: close\n\n")
    assert response.status_code == 200


def test_an_http_0_9_request_is_refused_and_never_reaches_gunicorn(stack):
    """A request line without a version is HTTP/0.9, whose reply has no status line and no
    headers. nginx used to proxy it; it now answers only the error body."""
    marker = new_request_id()
    (response,) = parse_responses(exchange(stack.port, b"GET /api/whoami?" + marker.encode() + b"\r\n"))
    assert response.status_code is None
    body = response.json()
    assert (body["status"], body["error"]) == (400, "bad_request")
    assert marker not in web_logs(stack)


# What nginx refuses itself (snippets/refuse-unforwardable.conf) is refused by each server
# before it chooses a location, so the pages and the static files are covered as the API is
# (whose refusals the tests above and test_hostile_paths/_protocol check). Unrefused, a page
# request reaches gunicorn, and a static one gets the static location's 404 or 405.
REFUSED_IN_EVERY_LOCATION = [
    ("http-0.9", b"GET %s\r\n", None),
    ("raw-non-ascii", b"GET %s\xc3\xbc HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 400),
    ("two-letter-method", b"GO %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 501),
]


@pytest.mark.parametrize("location", [b"/", b"/static/"], ids=["page", "static"])
@pytest.mark.parametrize("request_line", REFUSED_IN_EVERY_LOCATION, ids=lambda case: case[0])
def test_every_location_refuses_what_gunicorn_cannot_take_with_nginxs_own_page(stack, location, request_line):
    _, template, status = request_line
    marker = new_request_id()
    (response,) = parse_responses(exchange(stack.port, template % (location + marker.encode())))
    assert response.status_code == status, (response.status_code, response.text[:300])
    expected = f"{status or 400} {'Not Implemented' if status == 501 else 'Bad Request'}"
    assert f"<title>{expected}</title>" in response.text and "<center>nginx</center>" in response.text
    if status is not None:
        assert_security_headers(response)
    assert marker not in web_logs(stack)


# ---------------------------------------------------------------------------------------
# 4. Smuggling: a second request hidden in a body must never reach gunicorn as a request.

SMUGGLED = b"GET /api/whoami?smuggled=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def smuggling(case, framing):
    """POST /api/echo with the given framing header lines ({length}: the body's length),
    whose body, read as chunked, ends at once and hides a second request."""
    body = b"0\r\n\r\n" + SMUGGLED % case.encode()
    head = b"POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(line + b"\r\n" for line in framing)
    return head.replace(b"{length}", str(len(body)).encode()) + b"\r\n" + body


@pytest.mark.parametrize(
    "case, framing, status",
    [
        ("cl-then-te", [b"Content-Length: {length}", b"Transfer-Encoding: chunked"], 400),
        ("te-then-cl", [b"Transfer-Encoding: chunked", b"Content-Length: {length}"], 400),
        ("two-lengths", [b"Content-Length: 5", b"Content-Length: {length}"], 400),
        ("same-length-twice", [b"Content-Length: {length}", b"Content-Length: {length}"], 400),
        ("length-list", [b"Content-Length: {length}, {length}"], 400),
        ("signed-length", [b"Content-Length: +{length}"], 400),
        ("te-xchunked", [b"Transfer-Encoding: xchunked", b"Content-Length: {length}"], 501),
        ("te-leading-space", [b"Transfer-Encoding:  chunked", b"Content-Length: {length}"], 400),
        ("te-tab", [b"Transfer-Encoding:\tchunked", b"Content-Length: {length}"], 501),
        ("te-list", [b"Transfer-Encoding: chunked, identity", b"Content-Length: {length}"], 501),
        ("te-uppercase", [b"Transfer-Encoding: CHUNKED", b"Content-Length: {length}"], 400),
        ("te-space-before-colon", [b"Transfer-Encoding : chunked", b"Content-Length: {length}"], 400),
        ("te-folded", [b"Transfer-Encoding:", b" chunked", b"Content-Length: {length}"], 400),
        ("te-folded-into-other", [b"X-Padding: a", b" Transfer-Encoding: chunked", b"Content-Length: {length}"], 400),
        ("te-twice", [b"Transfer-Encoding: chunked", b"Transfer-Encoding: identity"], 400),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_ambiguous_framing_is_refused_and_the_hidden_request_never_reaches_gunicorn(stack, case, framing, status):
    responses = parse_responses(exchange(stack.port, smuggling(case, framing)))
    assert [r.status_code for r in responses] == [status], "nginx must answer once, then close"
    assert_json_error(responses[0], status)
    assert_security_headers(responses[0])
    assert f"smuggled={case}" not in web_logs(stack)


def test_an_http_1_0_chunked_body_is_refused(stack):
    """RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means the framing cannot be trusted."""
    data = smuggling("http-1.0", [b"Transfer-Encoding: chunked"]).replace(b"HTTP/1.1\r\nHost", b"HTTP/1.0\r\nHost", 1)
    responses = parse_responses(exchange(stack.port, data))
    assert [r.status_code for r in responses] == [400]
    assert_json_error(responses[0], 400)
    assert "smuggled=http-1.0" not in web_logs(stack)


@pytest.mark.parametrize(
    "chunk",
    [b"zz\r\nhello\r\n", b"5\nhello\n", b"ffffffffffffffffff\r\nhello\r\n"],
    ids=["not-hex", "bare-lf", "huge-size"],
)
def test_a_malformed_chunked_body_is_nginxs_json_400(stack, chunk):
    framing = [(b"Transfer-Encoding", b"chunked"), (b"Connection", b"close")]
    data = request_bytes(b"POST", b"/api/echo", framing, chunk + b"0\r\n\r\n")
    assert_json_error(send(stack, data), 400, "bad_request")


def test_a_request_hidden_in_a_get_body_stays_a_body(stack):
    """nginx passes a GET's body to gunicorn with its Content-Length; gunicorn reads it as a body."""
    body = SMUGGLED % b"get-body"
    headers = [(b"Content-Length", b"%d" % len(body)), (b"Connection", b"close")]
    data = request_bytes(b"GET", b"/api/whoami", headers, body)
    assert send(stack, data).status_code == 200
    assert "smuggled=get-body" not in web_logs(stack)


def test_no_smuggled_request_ever_reached_gunicorn(stack):
    """The log check once more, for the whole module, after every connection has closed."""
    assert "smuggled=" not in web_logs(stack)
