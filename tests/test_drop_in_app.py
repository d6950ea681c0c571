"""Your own app drops in: a foreign Flask app, placed where the README says, runs in the stack.

The app below has none of the demo's routes and no health endpoint: only `create_app()` in
services/web/app/__init__.py and a file in services/web/app/static/. The test copies the
repository's services and compose file to a folder of its own, puts this app where the demo
was, builds images under a tag of their own, and drives the composed stack.
"""

import json
import re
import shutil
import subprocess
import textwrap
import uuid

import pytest

from composed import ROOT, composed_stack, log_entries, wait_for

FOREIGN_APP = """\
import subprocess

from flask import Flask, request, url_for


def create_app():
    app = Flask(__name__)

    @app.post("/attachments")
    def attach():
        return {"bytes": len(request.get_data())}

    @app.post("/thumbnails")
    def thumbnail():
        # As many CLI tools and their wrappers do: a child left running in the background.
        subprocess.run(["sh", "-c", "sleep 0.2 & exit 0"], check=True, timeout=10)
        return {"started": True}

    @app.get("/")
    def home():
        css = url_for("static", filename="notes.css")
        return f'<!doctype html><title>Notes</title><link rel="stylesheet" href="{css}"><h1>Notes</h1>'

    @app.get("/notes")
    def notes():
        return {"notes": ["buy milk"], "seen_request_id": request.headers.get("X-Request-ID")}

    return app
"""
FOREIGN_CSS = "h1 { color: rebeccapurple; }\n"
# The stack's knobs, which must reach an app that knows nothing of them.
BODY_LIMIT = 4096
TRUSTED_HOST = "notes.example"


@pytest.fixture(scope="module")
def foreign_stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("drop-in")
    shutil.copy(ROOT / "compose.yaml", root / "compose.yaml")
    shutil.copytree(ROOT / "services", root / "services", ignore=shutil.ignore_patterns("__pycache__", "tests"))
    app = root / "services" / "web" / "app"
    shutil.rmtree(app)
    (app / "static").mkdir(parents=True)
    (app / "__init__.py").write_text(FOREIGN_APP)
    (app / "static" / "notes.css").write_text(FOREIGN_CSS)
    tag = f"drop-in-{uuid.uuid4().hex[:8]}"
    try:
        # 127.0.0.1: the tests' own requests name it, with the published port.
        knobs = {"APP_MAX_BODY_BYTES": str(BODY_LIMIT), "APP_TRUSTED_HOSTS": f"{TRUSTED_HOST},127.0.0.1"}
        with composed_stack("drop-in", env={"IMAGE_TAG": tag, **knobs}, root=root) as composed:
            yield composed
    finally:
        subprocess.run(
            ["docker", "image", "rm", "--force", f"flask-stack/web:{tag}", f"flask-stack/nginx:{tag}"],
            capture_output=True,
            timeout=120,
            check=False,
        )


def test_a_foreign_flask_app_drops_in_and_the_stack_serves_it(foreign_stack):
    # Healthy: `up --wait` returned, and /healthz is the stack's, not the app's.
    assert foreign_stack.get("/healthz").json() == {"status": "ok"}
    for service in ("web", "nginx"):
        (container,) = foreign_stack.running(service)
        assert container.attrs["State"]["Health"]["Status"] == "healthy"

    # nginx proxies the app's pages, and every response carries the request id.
    page = foreign_stack.get("/", headers={"X-Request-ID": "drop-in-page-0001"})
    assert page.status_code == 200 and "<h1>Notes</h1>" in page.text
    assert page.headers["X-Request-ID"] == "drop-in-page-0001"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    notes = foreign_stack.get("/notes", headers={"X-Request-ID": "drop-in-notes-0001"})
    assert notes.json() == {"notes": ["buy milk"], "seen_request_id": "drop-in-notes-0001"}
    assert notes.headers["X-Request-ID"] == "drop-in-notes-0001"
    generated = foreign_stack.get("/notes")
    assert re.fullmatch(r"[A-Za-z0-9._-]{8,128}", generated.headers["X-Request-ID"])

    # nginx serves the app's static files, under the fingerprinted name url_for built and
    # under the plain one; gunicorn never sees them.
    (linked,) = re.findall(r'href="(/static/[^"]+)"', page.text)
    assert re.fullmatch(r"/static/notes\.[0-9a-f]{12}\.css", linked), linked
    for path, cache in ((linked, "public, max-age=31536000, immutable"), ("/static/notes.css", "no-cache")):
        static = foreign_stack.get(path)
        assert static.status_code == 200 and static.text == FOREIGN_CSS
        assert static.headers["Cache-Control"] == cache
    web_log = foreign_stack.logs("web")
    logged_ids = {entry.get("request_id") for entry in log_entries(web_log)}
    assert "GET /notes" in web_log and "drop-in-notes-0001" in logged_ids
    assert "drop-in-page-0001" in logged_ids
    assert "/static/" not in web_log

    # The demo's routes are not there: a path the app lacks is the app's own 404.
    assert foreign_stack.get("/no-such-page").status_code == 404


def test_the_trusted_hosts_knob_reaches_the_app_and_the_stack_stays_healthy(foreign_stack):
    # Both health checks (web's asks 127.0.0.1:8000, nginx's localhost) pass: `up --wait`
    # returned, and Docker calls both containers healthy.
    for service in ("web", "nginx"):
        (container,) = foreign_stack.running(service)
        container.reload()
        assert container.attrs["State"]["Health"]["Status"] == "healthy"
    trusted = foreign_stack.get("/notes", headers={"Host": TRUSTED_HOST})
    assert trusted.status_code == 200 and trusted.json()["notes"] == ["buy milk"]
    refused = foreign_stack.get("/notes", headers={"Host": "evil.example.net"})
    assert refused.status_code == 400


def post_to_gunicorn(stack, path, sizes):
    """POST bodies of `sizes` bytes to gunicorn directly, from inside the web container
    (nginx bypassed): the status of each."""
    script = textwrap.dedent(f"""
        import json, urllib.error, urllib.request
        def post(size):
            request = urllib.request.Request("http://127.0.0.1:8000{path}", data=b"a" * size, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code
        print(json.dumps([post(size) for size in {list(sizes)}]))
    """)
    exit_code, output = stack.running("web")[0].exec_run(["python", "-c", script])
    assert exit_code == 0, output
    return json.loads(output)


def test_flask_enforces_the_body_limit_on_the_apps_own_route_when_nginx_is_bypassed(foreign_stack):
    """APP_MAX_BODY_BYTES reaches a route of the user's app, not only the probes."""
    assert post_to_gunicorn(foreign_stack, "/attachments", [BODY_LIMIT, BODY_LIMIT + 1, 5000]) == [200, 413, 413]


def zombies(container):
    """The command names of the container's zombie processes, from its /proc."""
    script = textwrap.dedent("""
        import glob
        found = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                text = open(stat).read()
            except OSError:
                continue
            if text[text.rindex(")") + 2] == "Z":
                found.append(text[text.index("(") + 1 : text.rindex(")")])
        print(" ".join(found))
    """)
    exit_code, output = container.exec_run(["python", "-c", script])
    assert exit_code == 0, output
    return output.decode().split()


def test_children_the_app_leaves_behind_are_reaped(foreign_stack):
    for _ in range(20):
        assert foreign_stack.post("/thumbnails", timeout=10).json() == {"started": True}
    (web,) = foreign_stack.running("web")
    # Each orphaned sleep ends 0.2 s after its request; the container's first process reaps it.
    wait_for(lambda: not zombies(web), deadline_s=10, message=f"no zombie in the web container ({zombies(web)})")
