"""Dynamic requests go through nginx to Flask, carrying the real client's address and scheme."""


def test_healthz_answers_through_nginx(stack):
    response = stack.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["Server"] == "nginx"


def test_whoami_reports_the_real_client_ip_and_scheme(stack):
    body = stack.get("/api/whoami", headers={"X-Forwarded-For": "203.0.113.66", "X-Forwarded-Proto": "https"}).json()
    # Traffic from the host reaches nginx from the compose network's gateway; the
    # spoofed X-Forwarded-For entry and X-Forwarded-Proto are not believed.
    nginx = stack.running("nginx")[0]
    nginx.reload()
    network = next(iter(nginx.attrs["NetworkSettings"]["Networks"].values()))
    assert body["client_ip"] == network["Gateway"]
    assert body["client_ip"] != "203.0.113.66"
    assert body["scheme"] == "http"
    assert body["worker_class"] == "gevent"
    assert body["hostname"] in {c.id[:12] for c in stack.running("web")}


def test_index_page_is_rendered_by_flask(stack):
    response = stack.get("/")
    assert response.status_code == 200
    assert "text/html" in response.headers["Content-Type"]
    assert "Rendered by Flask under gunicorn" in response.text
