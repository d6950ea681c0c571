"""HTTPS at nginx (compose.tls.yaml, NGINX_TLS=on) with the certificates `make certs` makes:
what a client negotiates, what is refused, the redirect from plain HTTP, and a certificate
renewal reaching a running nginx under load."""

import http.client
import json
import socket
import ssl
import subprocess
import time
import warnings

import httpx
import pytest
import requests

from composed import ROOT, composed_stack, free_loopback_port
from https_load import HttpsLoad
from stack.static_urls import fingerprint

STATIC_DIR = ROOT / "services/web/app/static"

# Low enough that a test reaches it in a burst, high enough for the load of the renewal test.
RATE_PER_S = 20
BURST = 40


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    make_certs(directory)
    return directory


def make_certs(directory):
    """`make certs` into `directory`: the CA made on the first run, a new certificate each run."""
    subprocess.run(
        ["make", "certs", f"CERT_DIR={directory}", "CERT_NAMES=localhost"], cwd=ROOT, check=True, capture_output=True
    )


@pytest.fixture(scope="module")
def tls_stack(certs):
    env = {
        "HTTPS_PORT": str(free_loopback_port()),
        "TLS_CERT_DIR": str(certs / "site"),
        "NGINX_RATE_LIMIT": f"{RATE_PER_S}r/s",
        "NGINX_RATE_LIMIT_BURST": str(BURST),
    }
    with composed_stack("tls", compose_files=("compose.yaml", "compose.tls.yaml"), env=env) as composed:
        composed.https_port = int(env["HTTPS_PORT"])
        yield composed


def client_context(certs, version=None):
    context = ssl.create_default_context(cafile=str(certs / "ca" / "ca.crt"))
    if version is not None:
        # OpenSSL 3 offers TLS 1.0 and 1.1 only at security level 0: without it the refusal
        # would come from this client, not from nginx.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # asking for old versions is the point
            context.minimum_version = version
            context.maximum_version = version
    return context


def handshake(stack, context, server_hostname="localhost"):
    """A TLS connection to nginx's HTTPS port; returns the connected socket."""
    raw = socket.create_connection(("127.0.0.1", stack.https_port), timeout=10)
    try:
        return context.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


def https_get(stack, context, path, headers=None, method="GET", body=None):
    """A request over HTTPS/1.1 on a new connection: (status, headers, body, the served certificate)."""
    connection = http.client.HTTPSConnection("localhost", stack.https_port, context=context, timeout=10)
    # Connect to the loopback address the port is published on, naming localhost in SNI.
    connection.sock = handshake(stack, context)
    certificate = connection.sock.getpeercert()
    try:
        connection.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.headers, response.read(), certificate
    finally:
        connection.close()


def h2_client(stack, certs):
    return httpx.Client(
        http2=True, verify=client_context(certs), base_url=f"https://127.0.0.1:{stack.https_port}", timeout=10
    )


def h2_get(client, path, **kwargs):
    # The loopback address, with localhost as the TLS name and the Host (:authority).
    return client.get(
        path,
        headers={"Host": "localhost", **kwargs.pop("headers", {})},
        extensions={"sni_hostname": "localhost"},
        **kwargs,
    )


def test_handshake_verifies_against_the_local_ca(tls_stack, certs):
    with handshake(tls_stack, client_context(certs)) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        names = [value for kind, value in tls.getpeercert()["subjectAltName"] if kind == "DNS"]
        assert names == ["localhost"]
    # The same handshake with only the system's trust store fails: the chain ends at our CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(tls_stack, ssl.create_default_context())


def test_alpn_negotiates_h2_and_serves_static_and_api_over_it(tls_stack, certs):
    context = client_context(certs)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with handshake(tls_stack, context) as tls:
        assert tls.selected_alpn_protocol() == "h2"

    static_path = f"/static/{fingerprint(STATIC_DIR, 'css/site.css')}"
    with h2_client(tls_stack, certs) as client:
        static = h2_get(client, static_path)
        api = h2_get(client, "/api/whoami", headers={"X-Request-ID": "tls-h2-request-0001"})
    assert (static.http_version, static.status_code) == ("HTTP/2", 200)
    assert static.content == (STATIC_DIR / "css" / "site.css").read_bytes()
    assert "immutable" in static.headers["cache-control"]
    assert (api.http_version, api.status_code) == ("HTTP/2", 200)
    # The app saw the request as https, from the Host the client named, with its request id.
    assert api.json()["scheme"] == "https"
    assert api.json()["host"] == "localhost"
    assert api.headers["x-request-id"] == "tls-h2-request-0001"
    for response in (static, api):
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["TLSv1.0", "TLSv1.1"])
def test_old_protocol_versions_are_refused_by_nginx(tls_stack, certs, version):
    # nginx's protocol_version alert, not this client giving up before asking.
    with pytest.raises(ssl.SSLError) as refused:
        handshake(tls_stack, client_context(certs, version))
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["TLSv1.2", "TLSv1.3"])
def test_current_protocol_versions_are_accepted(tls_stack, certs, version):
    # The same client settings as the refused versions', so their refusal is nginx's choice.
    with handshake(tls_stack, client_context(certs, version)) as tls:
        assert tls.version() == version.name.replace("_", ".")


@pytest.mark.parametrize("server_hostname", ["wrong.example", None], ids=["wrong-sni", "no-sni"])
def test_a_name_nginx_does_not_serve_is_refused_in_the_handshake(tls_stack, certs, server_hostname):
    context = client_context(certs)
    context.check_hostname = False
    with pytest.raises(ssl.SSLError) as refused:
        handshake(tls_stack, context, server_hostname=server_hostname)
    assert refused.value.reason == "TLSV1_UNRECOGNIZED_NAME", refused.value


def test_plain_http_to_the_tls_port_gets_a_400(tls_stack):
    connection = http.client.HTTPConnection("127.0.0.1", tls_stack.https_port, timeout=10)
    try:
        connection.request("GET", "/api/whoami", headers={"Host": "localhost"})
        response = connection.getresponse()
        assert response.status == 400
        assert b"plain HTTP" in response.read()
    finally:
        connection.close()


def test_a_host_other_than_the_sni_gets_421(tls_stack, certs):
    status, _, _, _ = https_get(tls_stack, client_context(certs), "/api/whoami", headers={"Host": "other.example"})
    assert status == 421


@pytest.mark.parametrize("method, path", [("GET", "/api/whoami?n=1"), ("POST", "/api/echo")])
def test_plain_http_redirects_to_the_same_url_over_https(tls_stack, method, path):
    response = requests.request(
        method, tls_stack.url(path), data=b"{}", allow_redirects=False, headers={"Host": "localhost"}, timeout=10
    )
    assert response.status_code == 308
    assert response.headers["Location"] == f"https://localhost:{tls_stack.https_port}{path}"
    # Never pinned over plain HTTP; the request id and security headers are there as ever.
    assert "Strict-Transport-Security" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Request-ID"]


def test_health_is_answered_over_plain_http(tls_stack):
    health = tls_stack.get("/healthz")
    assert health.status_code == 200
    assert "Strict-Transport-Security" not in health.headers


def test_errors_are_json_over_https_as_over_http(tls_stack, certs):
    # nginx's own JSON error (the body is over NGINX_CLIENT_MAX_BODY_SIZE), and the app's.
    status, headers, body, _ = https_get(
        tls_stack, client_context(certs), "/api/echo", method="POST", body=b"x" * (1024 * 1024 + 1)
    )
    assert status == 413
    assert json.loads(body)["error"] == "request_entity_too_large"
    assert json.loads(body)["request_id"] == headers["X-Request-ID"]
    with h2_client(tls_stack, certs) as client:
        missing = h2_get(client, "/api/no-such-endpoint")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")


def whoami_over_https(stack, context):
    """One load request: (status, the served certificate's serial)."""
    status, _, _, certificate = https_get(stack, context, "/api/whoami")
    return status, certificate["serialNumber"]


def served_serial(stack, certs):
    return https_get(stack, client_context(certs), "/healthz")[3]["serialNumber"]


def test_a_renewed_certificate_is_served_after_nginx_reload_under_load(tls_stack, certs):
    old_serial = served_serial(tls_stack, certs)
    context = client_context(certs)
    with HttpsLoad(lambda _: whoami_over_https(tls_stack, context)) as load:
        time.sleep(2)
        make_certs(certs)  # same CA, new key and certificate, written by rename
        time.sleep(1)
        # Not yet served: nginx reads certificates at start and at a reload only.
        assert served_serial(tls_stack, certs) == old_serial
        reload_started = time.monotonic()
        tls_stack.make("nginx-reload")
        # `nginx -s reload` returns once signalled; new workers take over within moments.
        reload_signalled = time.monotonic()
        time.sleep(3)
    new_serial = served_serial(tls_stack, certs)
    assert new_serial != old_serial

    failed = [outcome for outcome in load.outcomes if outcome[2] != 200]
    assert not failed, failed[:5]
    assert len(load.outcomes) >= 20, len(load.outcomes)
    # Requests kept being served across the reload, and the new certificate reached them.
    assert any(started < reload_started for started, _, _, _ in load.outcomes)
    serials_after = {serial for started, _, _, serial in load.outcomes if started > reload_signalled + 0.5}
    assert serials_after == {new_serial}, serials_after


def test_per_client_limits_apply_over_https(tls_stack, certs):
    # A burst well over BURST from one client, over HTTP/2 streams: some are refused with the
    # JSON 429, none fails otherwise. (Last in the module: it empties the client's budget.)
    with h2_client(tls_stack, certs) as client:
        responses = [h2_get(client, "/api/whoami") for _ in range(3 * BURST)]
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {200, 429}, set(statuses)
    refused = [response for response in responses if response.status_code == 429]
    assert refused, statuses
    assert refused[0].json()["error"] == "too_many_requests"
    assert refused[0].headers["retry-after"] == "1"
